package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var tokenRE = regexp.MustCompile(`<code id="token"[^>]*>([^<]+)</code>`)

// TestRun starts the whole program on port 0, signs in through the demo
// login, creates a key through the portal and calls /api/hello with it.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logger := slog.New(slog.DiscardHandler)
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, "127.0.0.1:0", filepath.Join(t.TempDir(), "demo.db"), logger, func(u string) { ready <- u })
	}()
	var base string
	select {
	case base = <-ready:
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("run did not start")
	}

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	get := func(c *http.Client, req *http.Request) (int, string) {
		t.Helper()
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	post := func(path string, form url.Values) (int, string, string) {
		t.Helper()
		resp, err := c.PostForm(base+path, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Request.URL.Path, string(b)
	}

	// The portal sends strangers to the login.
	resp, err := c.Get(base + "/keys/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/login" {
		t.Errorf("GET /keys/ signed out ended at %s, want /login", resp.Request.URL.Path)
	}

	if status, path, _ := post("/login", url.Values{"username": {"alice"}}); status != 200 || path != "/keys/" {
		t.Fatalf("login: status %d at %s, want 200 at /keys/", status, path)
	}
	status, path, body := post("/keys/new", url.Values{"name": {"hello client"}, "expires": {"never"}, "scope": {"hello:read"}})
	m := tokenRE.FindStringSubmatch(body)
	if status != 200 || m == nil {
		t.Fatalf("create: status %d at %s, no token:\n%s", status, path, body)
	}
	token := m[1]

	req, _ := http.NewRequest("GET", base+"/api/hello", nil)
	req.Header.Set("Authorization", "Api-Key "+token)
	status, body = get(http.DefaultClient, req)
	if status != 200 || !strings.HasPrefix(body, "Hello, alice!") || !strings.Contains(body, `"hello client"`) {
		t.Errorf("/api/hello with the key: %d %q, want a greeting for alice", status, body)
	}
	req, _ = http.NewRequest("GET", base+"/api/hello", nil)
	if status, _ = get(http.DefaultClient, req); status != http.StatusUnauthorized {
		t.Errorf("/api/hello without a key: status %d, want 401", status)
	}

	// The demo Manager allows 3 keys per owner.
	for i := 0; i < 2; i++ {
		post("/keys/new", url.Values{"name": {"more"}, "expires": {"never"}})
	}
	status, _, body = post("/keys/new", url.Values{"name": {"one too many"}, "expires": {"never"}})
	if status != http.StatusConflict || !strings.Contains(body, "limit of 3 keys") {
		t.Errorf("4th key: status %d, want 409 with the limit message", status)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run returned %v after shutdown", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("run did not return after cancel")
	}
}

func TestLoginRejectsBadNames(t *testing.T) {
	for _, name := range []string{"", "a b", strings.Repeat("x", 65), "<script>"} {
		req, _ := http.NewRequest("POST", "/login", strings.NewReader(url.Values{"username": {name}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		login(rec, req)
		if rec.Code != http.StatusUnprocessableEntity || len(rec.Result().Cookies()) != 0 {
			t.Errorf("login %q: status %d, cookies %v", name, rec.Code, rec.Result().Cookies())
		}
	}
}
