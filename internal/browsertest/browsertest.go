// Package browsertest runs tests in a real headless Chromium through
// chromedp. It hides chromedp's moving API behind a few functions: New
// starts a browser for one test, NewBrowserContext opens a tab with its own
// cookies in that browser, and Text and Screenshot read what a page shows.
// The contexts these functions return work with every chromedp action.
//
// Tests that use it need Debian's chromium at ExecPath; without it they are
// skipped with a message, never failed.
package browsertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// ExecPath is where New looks for the browser: Debian's chromium package
// (apt-get install -y chromium).
const ExecPath = "/usr/bin/chromium"

// Timeout bounds the whole life of the browser New starts: a test that has
// not finished its browser work by then fails with context.DeadlineExceeded
// instead of hanging. Element queries wait until the element appears, so a
// missing element also ends at Timeout. It is generous because the test
// command runs the browser beside the race-enabled tests of every module.
const Timeout = 120 * time.Second

// New starts a headless Chromium for t and returns a chromedp context bound
// to its first tab. The browser runs with a fresh profile in t.TempDir(),
// without sandbox, GPU, QUIC or background networking, in a 1280×800
// window. It stops after Timeout or when the test ends, whichever comes
// first; when the test failed, the browser's output is logged.
//
// If ExecPath does not exist, New skips t. If the browser cannot start, New
// fails t.
func New(t testing.TB) context.Context {
	t.Helper()
	if _, err := os.Stat(ExecPath); err != nil {
		t.Skipf("browsertest: headless Chromium not found at %s (apt-get install -y chromium): %v", ExecPath, err)
	}
	dir := t.TempDir() // removed after the browser has stopped: cleanups run last-in first-out

	out := new(syncBuffer)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(ExecPath),
		chromedp.UserDataDir(dir),
		chromedp.NoSandbox,
		chromedp.Flag("headless", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(1280, 800),
		chromedp.CombinedOutput(out),
	)
	ctx, cancelTimeout := context.WithTimeout(context.Background(), Timeout)
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	ctx, cancelBrowser := chromedp.NewContext(ctx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
		cancelTimeout()
		if t.Failed() && out.Len() > 0 {
			t.Logf("browsertest: chromium output:\n%s", out.String())
		}
	})
	// Start the browser now, so that a broken installation fails here with
	// a clear message rather than in the first action of the test.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("browsertest: starting %s: %v\n%s", ExecPath, err, out.String())
	}
	return ctx
}

// NewBrowserContext opens a tab in a new browser context of the browser
// behind ctx (a context from New) and returns a chromedp context bound to
// it. Like an incognito window, the new browser context shares no cookies,
// storage or cache with the others, so one test can act as two users. It is
// closed when the test ends.
func NewBrowserContext(t testing.TB, ctx context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("browsertest: opening a new browser context: %v", err)
	}
	return ctx
}

// Follow clicks the first element that matches the CSS selector sel (a
// link or a submit button) and waits until the page it leads to has
// loaded, returning the HTTP response of that page's document. Unlike a
// click followed by a wait for an element of the next page, it cannot look
// for that element in the page being left, nor miss the click while the
// page is still being laid out: the element is clicked through the DOM,
// and the wait is for the navigation itself.
func Follow(ctx context.Context, sel string) (*network.Response, error) {
	js := fmt.Sprintf("document.querySelector(%q).click()", sel)
	resp, err := chromedp.RunResponse(ctx,
		chromedp.WaitVisible(chromedp.CSS(sel)),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := chromedp.Evaluate[any](js)(ctx, t)
			return err
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("browsertest: following %q: %w", sel, err)
	}
	return resp, nil
}

// Text returns the visible text of the first element that matches the CSS
// selector sel, waiting for it to appear.
func Text(ctx context.Context, sel string) (string, error) {
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		return "", fmt.Errorf("browsertest: text of %q: %w", sel, err)
	}
	return s, nil
}

// Exists reports whether an element matches the CSS selector sel now,
// without waiting.
func Exists(ctx context.Context, sel string) (bool, error) {
	js := fmt.Sprintf("document.querySelector(%q) !== null", sel)
	ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
	if err != nil {
		return false, fmt.Errorf("browsertest: looking for %q: %w", sel, err)
	}
	return ok, nil
}

// Screenshot saves a PNG of the whole page of ctx's tab, beyond the
// viewport, at path, creating its directory.
func Screenshot(ctx context.Context, path string) error {
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return fmt.Errorf("browsertest: screenshot: %w", err)
	}
	if len(png) == 0 {
		return errors.New("browsertest: screenshot: the browser returned no image")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("browsertest: screenshot: %w", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return fmt.Errorf("browsertest: screenshot: %w", err)
	}
	return nil
}

// syncBuffer collects the browser's output, written from chromedp's
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Len()
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
