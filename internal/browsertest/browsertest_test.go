package browsertest_test

import (
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/go-apikey/apikey/internal/browsertest"
)

func TestDataURL(t *testing.T) {
	ctx := browsertest.New(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(`data:text/html,<h1 id="t">Hello, browser</h1>`)); err != nil {
		t.Fatal(err)
	}
	got, err := browsertest.Text(ctx, "#t")
	if err != nil {
		t.Fatal(err)
	}
	if want := "Hello, browser"; got != want {
		t.Errorf("Text(#t) = %q, want %q", got, want)
	}
	if ok, err := browsertest.Exists(ctx, "#missing"); err != nil || ok {
		t.Errorf("Exists(#missing) = %v, %v; want false, nil", ok, err)
	}
}

// TestBrowserContexts checks that a page and its screenshot work over HTTP
// and that a new browser context does not share cookies.
func TestBrowserContexts(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/set" {
			http.SetCookie(w, &http.Cookie{Name: "who", Value: "alice", Path: "/"})
		}
		who := "nobody"
		if c, err := r.Cookie("who"); err == nil {
			who = c.Value
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>t</title><p id="who">%s</p>`, who)
	}))
	defer srv.Close()

	ctx := browsertest.New(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/set"), chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	if got, err := browsertest.Text(ctx, "#who"); err != nil || got != "alice" {
		t.Errorf("first context sees %q, %v; want alice", got, err)
	}

	other := browsertest.NewBrowserContext(t, ctx)
	if err := chromedp.Do(other, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	if got, err := browsertest.Text(other, "#who"); err != nil || got != "nobody" {
		t.Errorf("new browser context sees %q, %v; want nobody", got, err)
	}

	path := filepath.Join(t.TempDir(), "sub", "page.png")
	if err := browsertest.Screenshot(ctx, path); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.DecodeConfig(f); err != nil {
		t.Errorf("screenshot is not a PNG: %v", err)
	}
}
