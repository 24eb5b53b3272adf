package apikeyhttp_test

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyhttp"
	"github.com/go-apikey/apikey/memstore"
)

// netenvKeys creates, on a real Manager, a live key allowed from cidrs
// (none when empty) and returns its token.
func netenvKey(t *testing.T, m *apikey.Manager, env apikey.Environment, cidrs ...string) string {
	t.Helper()
	ps, err := apikey.ParseCIDRs(cidrs)
	if err != nil {
		t.Fatal(err)
	}
	_, token, err := m.Create(t.Context(), apikey.CreateParams{Name: "netenv", Environment: env, AllowedCIDRs: ps})
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// fetch sends a real request to url with the key and X-Forwarded-For lines,
// and returns the status and the problem code (empty on 200).
func fetch(t *testing.T, client *http.Client, url, token string, xff ...string) (int, apikeyhttp.Problem) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Api-Key "+token)
	for _, v := range xff {
		req.Header.Add("X-Forwarded-For", v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var p apikeyhttp.Problem
	if resp.StatusCode != http.StatusOK {
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatalf("status %d, body %q: %v", resp.StatusCode, body, err)
		}
	}
	return resp.StatusCode, p
}

func newNetenvManager(t *testing.T) *apikey.Manager {
	t.Helper()
	m, err := apikey.NewManager(memstore.New(), apikey.Config{UsageFlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestAllowlistOverHTTP runs the middleware in a real HTTP server on
// 127.0.0.1: RemoteAddr decides without trusted proxies, whatever the
// header says; with 127.0.0.1 as a trusted proxy, the right-most entry of
// X-Forwarded-For that is not a trusted proxy does.
func TestAllowlistOverHTTP(t *testing.T) {
	m := newNetenvManager(t)
	local := netenvKey(t, m, "", "127.0.0.0/8")
	office := netenvKey(t, m, "", "10.0.0.0/8", "2001:db8::/32")
	open := netenvKey(t, m, "")

	direct := httptest.NewServer(mustNew(t, m, apikeyhttp.Config{}).Handler(echo))
	defer direct.Close()
	proxied := httptest.NewServer(mustNew(t, m, apikeyhttp.Config{
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("172.16.0.0/12")},
	}).Handler(echo))
	defer proxied.Close()
	c := direct.Client()

	for _, tc := range []struct {
		name   string
		url    string
		token  string
		xff    []string
		status int
		code   apikey.Code
		detail string
	}{
		{"direct, allowed", direct.URL, local, nil, 200, "", ""},
		{"direct, no allowlist", direct.URL, open, []string{"garbage"}, 200, "", ""},
		{"direct, refused", direct.URL, office, nil, 403, apikey.CodeIPNotAllowed, "The API key may not be used from 127.0.0.1."},
		{"direct, the header is not believed", direct.URL, office, []string{"10.1.2.3"}, 403, apikey.CodeIPNotAllowed, "127.0.0.1"},
		{"direct, a malformed header is ignored", direct.URL, local, []string{"not an address"}, 200, "", ""},
		{"proxied, client in the header", proxied.URL, office, []string{"10.1.2.3"}, 200, "", ""},
		{"proxied, IPv6 client with a port", proxied.URL, office, []string{"[2001:db8::7]:443"}, 200, "", ""},
		{"proxied, IPv4 client with a port", proxied.URL, office, []string{"10.1.2.3:4711"}, 200, "", ""},
		{"proxied, a chain of trusted proxies", proxied.URL, office, []string{"10.1.2.3, 172.16.0.9", "172.20.1.1"}, 200, "", ""},
		{"proxied, a spoofed left entry", proxied.URL, office, []string{"10.1.2.3, 198.51.100.7"}, 403, apikey.CodeIPNotAllowed, "198.51.100.7"},
		{"proxied, spoofed in an earlier line", proxied.URL, office, []string{"10.1.2.3", "198.51.100.7"}, 403, apikey.CodeIPNotAllowed, "198.51.100.7"},
		{"proxied, no header: the proxy itself", proxied.URL, local, nil, 200, "", ""},
		{"proxied, only trusted entries: the left-most", proxied.URL, office, []string{"127.0.0.1, 172.16.0.1"}, 403, apikey.CodeIPNotAllowed, "127.0.0.1"},
		{"proxied, malformed entry", proxied.URL, office, []string{"10.1.2.3, bogus"}, 400, apikeyhttp.CodeBadForwardedFor, `entry "bogus" is not an IP address`},
		{"proxied, empty entry", proxied.URL, office, []string{"10.1.2.3,,172.16.0.1"}, 400, apikeyhttp.CodeBadForwardedFor, `entry ""`},
		{"proxied, unknown", proxied.URL, office, []string{"unknown"}, 400, apikeyhttp.CodeBadForwardedFor, `"unknown"`},
		{"proxied, too many entries", proxied.URL, office, []string{strings.Repeat("172.16.0.1,", 40) + "172.16.0.1"}, 400, apikeyhttp.CodeBadForwardedFor, "more than 32 entries"},
		{"proxied, key without an allowlist ignores a bad header", proxied.URL, open, []string{"bogus"}, 200, "", ""},
	} {
		status, p := fetch(t, c, tc.url, tc.token, tc.xff...)
		if status != tc.status || p.Code != tc.code || !strings.Contains(p.Detail, tc.detail) {
			t.Errorf("%s: %d %q %q, want %d %q containing %q", tc.name, status, p.Code, p.Detail, tc.status, tc.code, tc.detail)
		}
	}
}

// TestAllowlistOverIPv6 runs the middleware on ::1.
func TestAllowlistOverIPv6(t *testing.T) {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	m := newNetenvManager(t)
	loop := netenvKey(t, m, "", "::1")
	doc := netenvKey(t, m, "", "2001:db8::/32")
	srv := httptest.NewUnstartedServer(mustNew(t, m, apikeyhttp.Config{
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("::1/128")},
	}).Handler(echo))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	defer srv.Close()
	c := srv.Client()
	for _, tc := range []struct {
		token  string
		xff    []string
		status int
	}{
		{loop, nil, 200},
		{doc, nil, 403},
		{doc, []string{"2001:db8:0:1::5"}, 200},
		{doc, []string{"2001:db8::5, ::1"}, 200},
		{doc, []string{"2001:db9::5"}, 403},
		{loop, []string{"2001:db8::5"}, 403},
	} {
		if status, p := fetch(t, c, srv.URL, tc.token, tc.xff...); status != tc.status {
			t.Errorf("%v: %d %+v, want %d", tc.xff, status, p, tc.status)
		}
	}
}

// TestRouteEnvironment checks Config.Environment with a real Manager: the
// other environment's key is refused 403 wrong_environment before its
// scopes are checked, and the route's own is granted.
func TestRouteEnvironment(t *testing.T) {
	m := newNetenvManager(t)
	live := netenvKey(t, m, "")
	test := netenvKey(t, m, apikey.EnvTest)
	liveOnly := httptest.NewServer(mustNew(t, m, apikeyhttp.Config{Environment: apikey.EnvLive, Scopes: []string{"x"}}).Handler(echo))
	defer liveOnly.Close()
	testOnly := httptest.NewServer(mustNew(t, m, apikeyhttp.Config{Environment: apikey.EnvTest}).Handler(echo))
	defer testOnly.Close()
	c := liveOnly.Client()
	if status, p := fetch(t, c, liveOnly.URL, test); status != 403 || p.Code != apikey.CodeWrongEnvironment {
		t.Errorf("test key on a live route: %d %+v, want 403 wrong_environment", status, p)
	}
	if status, p := fetch(t, c, liveOnly.URL, live); status != 403 || p.Code != "insufficient_scope" {
		t.Errorf("live key on a live route: %d %+v, want it past the environment (403 insufficient_scope)", status, p)
	}
	if status, _ := fetch(t, c, testOnly.URL, test); status != 200 {
		t.Errorf("test key on a test route: %d", status)
	}
	if status, p := fetch(t, c, testOnly.URL, live); status != 403 || p.Code != apikey.CodeWrongEnvironment {
		t.Errorf("live key on a test route: %d %+v", status, p)
	}
	if _, err := apikeyhttp.New(m, apikeyhttp.Config{Environment: "prod"}); err == nil || !strings.Contains(err.Error(), `got "prod"`) {
		t.Errorf("New(Environment prod) = %v", err)
	}
	if _, err := apikeyhttp.New(m, apikeyhttp.Config{TrustedProxies: []netip.Prefix{{}}}); err == nil {
		t.Error("New accepted an invalid trusted proxy")
	}
}

func TestClientAddr(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, c := range []struct {
		remote string
		xff    []string
		want   string
		err    bool
	}{
		{"192.0.2.1:5000", []string{"1.2.3.4"}, "192.0.2.1", false},
		{"10.0.0.1:5000", []string{"1.2.3.4"}, "1.2.3.4", false},
		{"10.0.0.1:5000", nil, "10.0.0.1", false},
		{"[::ffff:10.0.0.1]:5000", []string{" 1.2.3.4 "}, "1.2.3.4", false},
		{"[fe80::1%eth0]:5000", nil, "fe80::1", false},
		{"@", nil, "", false},
		{"", nil, "", false},
		{"10.0.0.1:5000", []string{""}, "", true},
		{"10.0.0.1:5000", []string{"1.2.3.4:99999"}, "", true},
		{"10.0.0.1:5000", []string{"1.2.3.4/8"}, "", true},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		for _, v := range c.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		got, err := apikeyhttp.ClientAddr(r, trusted)
		if c.err {
			if !errors.Is(err, apikeyhttp.ErrBadForwardedFor) {
				t.Errorf("ClientAddr(%q, %q) = %v, %v; want ErrBadForwardedFor", c.remote, c.xff, got, err)
			}
			continue
		}
		want := netip.Addr{}
		if c.want != "" {
			want = netip.MustParseAddr(c.want)
		}
		if err != nil || got != want {
			t.Errorf("ClientAddr(%q, %q) = %v, %v; want %v", c.remote, c.xff, got, err, want)
		}
	}
}

// FuzzClientAddr: any header value is read or refused with
// ErrBadForwardedFor, never a panic, and the address returned is never a
// trusted proxy unless every entry is one.
func FuzzClientAddr(f *testing.F) {
	f.Add("10.0.0.1:80", "1.2.3.4, 10.0.0.2")
	f.Add("10.0.0.1:80", "[2001:db8::1]:443,,")
	f.Add("10.0.0.1:80", "\x00\xff")
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", xff)
		a, err := apikeyhttp.ClientAddr(r, trusted)
		if err != nil && !errors.Is(err, apikeyhttp.ErrBadForwardedFor) {
			t.Fatalf("ClientAddr(%q, %q): %v", remote, xff, err)
		}
		if err == nil && a.IsValid() && a.Is4In6() {
			t.Fatalf("ClientAddr(%q, %q) = %v, not unmapped", remote, xff, a)
		}
	})
}
