package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ownRedis starts a redis-server of the test's own on port (a free one
// when 0), so that it can be stopped and started again without touching
// the shared one, and returns its address and process. It is killed, by
// its PID, when the test ends.
func ownRedis(t *testing.T, port int) (string, *os.Process) {
	t.Helper()
	if os.Getenv("APIKEY_TEST_REDIS_ADDR") == "" {
		t.Skip("set APIKEY_TEST_REDIS_ADDR (for example 127.0.0.1:6379) to run the Redis tests")
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed")
	}
	if port == 0 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGCONT)
		cmd.Process.Kill()
		<-done
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(time.Second))
			_, err = c.Write([]byte("PING\r\n"))
			buf := make([]byte, 7)
			if err == nil {
				_, err = io.ReadFull(c, buf)
			}
			c.Close()
			if err == nil && string(buf) == "+PONG\r\n" {
				return addr, cmd.Process
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not answer within 10s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// timedCall is one request with the key, bounded by a client timeout so
// that a hung server fails the test rather than holding it.
type timedCall struct {
	status int
	ctype  string
	code   string
	detail string
	raw    string
	took   time.Duration
}

func callTimed(t *testing.T, method, url, token, body string) timedCall {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Api-Key "+token)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v (after %v)", method, url, err, time.Since(start))
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	c := timedCall{status: resp.StatusCode, ctype: resp.Header.Get("Content-Type"), raw: string(b), took: time.Since(start)}
	var p struct {
		Code   string `json:"code"`
		Detail string `json:"detail"`
	}
	if json.Unmarshal(b, &p) == nil {
		c.code, c.detail = p.Code, p.Detail
	}
	return c
}

// TestServeRedisDown runs "apikey serve --redis" on SQLite with a Redis of
// its own, and a key with a limit and one with a fail_open limit. While
// Redis is hung (SIGSTOP) and then gone (killed), the first is refused
// with 503 unavailable, a problem naming the cause, within about
// --redis-timeout, and the second is let through; once Redis is back, both
// are limited again. The server never answers 500 and never dies.
func TestServeRedisDown(t *testing.T) {
	t.Parallel()
	redisAddr, proc := ownRedis(t, 0)
	_, portText, _ := net.SplitHostPort(redisAddr)
	port, _ := strconv.Atoi(portText)
	const redisTimeout = 300 * time.Millisecond
	dir := t.TempDir()
	env := []string{"APIKEY_DB=" + databaseFor(t, "sqlite")}
	admin := adminToken(t, dir, env)
	s := startServe(t, dir, env, "--redis", redisAddr, "--redis-timeout", redisTimeout.String())

	create := func(body string) string {
		t.Helper()
		c := call(t, "POST", s.url+"/v1/keys", "api-key", admin, body)
		expect(t, "create", c, 201, "")
		return c.str("key")
	}
	closed := create(`{"name":"closed","ratelimits":[{"name":"requests","limit":1000,"period":"1m"}]}`)
	open := create(`{"name":"open","ratelimits":[{"name":"requests","limit":1000,"period":"1m","fail_open":true}]}`)
	tight := create(`{"name":"tight","ratelimits":[{"name":"requests","limit":1,"period":"1h"}]}`)

	// Both pass with Redis up, and Redis counts: the tight key's second
	// request is refused.
	for name, tok := range map[string]string{"closed": closed, "open": open} {
		c := callTimed(t, "GET", s.url+"/v1/whoami", tok, "")
		if c.status != 200 {
			t.Fatalf("%s key with Redis up: %d %s", name, c.status, c.raw)
		}
	}
	if c := callTimed(t, "GET", s.url+"/v1/whoami", tight, ""); c.status != 200 {
		t.Fatalf("tight key, first request: %d %s", c.status, c.raw)
	}
	if c := callTimed(t, "GET", s.url+"/v1/whoami", tight, ""); c.status != 429 || c.code != "rate_limited" {
		t.Fatalf("tight key, second request: %d %s, want 429 rate_limited", c.status, c.raw)
	}

	// down checks the answers while Redis cannot answer: the fail-closed
	// key is refused with a 503 problem naming the limiter, in about the
	// timeout (a loaded machine may take longer: 20 times is allowed);
	// the fail-open key passes. On the service's own route and on
	// POST /v1/verify.
	down := func(when string) {
		t.Helper()
		for _, route := range []struct{ method, path, token, body string }{
			{"GET", "/v1/whoami", closed, ""},
			{"POST", "/v1/verify", admin, `{"key":"` + closed + `"}`},
		} {
			// On /v1/verify the caller (admin) has no limit and passes; the
			// verified key's limit is the one that cannot be checked.
			c := callTimed(t, route.method, s.url+route.path, route.token, route.body)
			if c.status != http.StatusServiceUnavailable || c.ctype != "application/problem+json" || c.code != "unavailable" {
				t.Errorf("%s: fail-closed key on %s %s: %d %s %q, want 503 application/problem+json unavailable", when, route.method, route.path, c.status, c.ctype, c.raw)
			}
			if !strings.Contains(c.detail, "rate limit") {
				t.Errorf("%s: %s %s: detail %q does not name the rate limit that could not be checked", when, route.method, route.path, c.detail)
			}
			if c.took > 20*redisTimeout {
				t.Errorf("%s: %s %s took %v, want about --redis-timeout (%v)", when, route.method, route.path, c.took, redisTimeout)
			}
		}
		for _, route := range []struct{ method, path, token, body string }{
			{"GET", "/v1/whoami", open, ""},
			{"POST", "/v1/verify", admin, `{"key":"` + open + `"}`},
		} {
			c := callTimed(t, route.method, s.url+route.path, route.token, route.body)
			if c.status != 200 || (route.path == "/v1/verify" && !strings.Contains(c.raw, `"valid":true`)) {
				t.Errorf("%s: fail-open key on %s %s: %d %s, want 200", when, route.method, route.path, c.status, c.raw)
			}
			if c.took > 20*redisTimeout {
				t.Errorf("%s: fail-open key on %s %s took %v, want about --redis-timeout (%v)", when, route.method, route.path, c.took, redisTimeout)
			}
		}
	}
	// recovered waits until the fail-closed key passes again, and checks
	// that the limits are counted again (the tight key is still refused).
	recovered := func(when string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			c := callTimed(t, "GET", s.url+"/v1/whoami", closed, "")
			if c.status == 200 {
				break
			}
			if c.status != http.StatusServiceUnavailable {
				t.Fatalf("%s: %d %s while recovering", when, c.status, c.raw)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the fail-closed key is still refused 15s later: %s", when, c.raw)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if c := callTimed(t, "GET", s.url+"/v1/whoami", open, ""); c.status != 200 {
			t.Errorf("%s: fail-open key: %d %s", when, c.status, c.raw)
		}
		if c := callTimed(t, "GET", s.url+"/v1/whoami", tight, ""); c.status != 429 || c.code != "rate_limited" {
			t.Errorf("%s: tight key: %d %s, want 429 rate_limited (the limit counts in Redis again)", when, c.status, c.raw)
		}
	}

	// Hung: the process holds its connections and answers nothing.
	if err := proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	down("Redis stopped")
	if err := proc.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	recovered("Redis continued")

	// Gone: connections are refused.
	if err := proc.Kill(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	down("Redis killed")
	down("Redis still down")

	// Back, on the same port, empty: the tight key's bucket is gone with
	// the old process, so it passes once more and is then refused.
	ownRedis(t, port)
	deadline := time.Now().Add(15 * time.Second)
	for {
		c := callTimed(t, "GET", s.url+"/v1/whoami", closed, "")
		if c.status == 200 {
			break
		}
		if c.status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("Redis restarted: %d %s", c.status, c.raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if c := callTimed(t, "GET", s.url+"/v1/whoami", tight, ""); c.status != 200 {
		t.Errorf("Redis restarted empty: tight key's first request: %d %s", c.status, c.raw)
	}
	recovered("Redis restarted")

	if c := callTimed(t, "GET", s.url+"/healthz", "", ""); c.status != 200 {
		t.Errorf("healthz after the outages: %d", c.status)
	}
	select {
	case <-s.done:
		t.Fatalf("serve exited: %v\n%s", s.err, s.stderr)
	default:
	}
	if log := s.stderr.String(); strings.Contains(log, "panic") || strings.Contains(log, "status=500") {
		t.Errorf("serve's log shows a panic or a 500:\n%s", log)
	}
}
