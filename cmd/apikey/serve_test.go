package main

import (
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"

	"bufio"
	"encoding/json"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-apikey/apikey/apikeytest"
)

// TestServeBadAddr checks that a bad --addr is one line and exit status 2,
// before the database is touched.
func TestServeBadAddr(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, addr := range []string{"nope", "127.0.0.1", "127.0.0.1:99999", "127.0.0.1:http-alt", "exa mple:80", ":-1"} {
		want(t, e.run("serve", "--addr", addr), 2, "",
			`apikey: invalid --addr "`+addr+`": want HOST:PORT, such as 127.0.0.1:8080 (port 0 picks a free port)`+"\n")
	}
	if _, err := os.Stat(e.vars["APIKEY_DB"]); !os.IsNotExist(err) {
		t.Errorf("a bad --addr touched the database: %v", err)
	}
	want(t, e.run("serve", "extra"), 2, "", "apikey: serve takes no arguments (got 1)\n")

	// A port in use.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r := e.run("serve", "--addr", ln.Addr().String())
	if r.code != 2 || !strings.HasPrefix(r.stderr, "apikey: cannot listen on "+ln.Addr().String()+": ") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("port in use: %+v", r)
	}
}

// syncBuffer is a bytes buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// served is a running "apikey serve".
type served struct {
	cmd    *exec.Cmd
	url    string
	stderr *syncBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // of Wait, once done
}

var listening = regexp.MustCompile(`^apikey: listening on (http://127\.0\.0\.1:[0-9]+)$`)

// startServe starts the binary's serve command on port 0, with args, in dir and
// returns once it has logged its address. The process is killed, by its
// PID, when the test ends if it is still running.
func startServe(t *testing.T, dir string, env []string, args ...string) *served {
	t.Helper()
	cmd := exec.Command(binary(t), append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "APIKEY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &served{cmd: cmd, stderr: &syncBuffer{}, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(nil, 1<<20)
		found := false
		for sc.Scan() {
			line := sc.Text()
			s.stderr.Write([]byte(line + "\n"))
			if m := listening.FindStringSubmatch(line); m != nil && !found {
				found = true
				addr <- m[1]
			}
		}
		_, _ = io.Copy(io.Discard, pipe)
		s.err = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_ = cmd.Process.Kill()
			<-s.done
		}
	})
	select {
	case s.url = <-addr:
	case <-s.done:
		t.Fatalf("serve exited before listening: %v\n%s", s.err, s.stderr)
	case <-time.After(60 * time.Second):
		t.Fatalf("serve did not log its address within 60s:\n%s", s.stderr)
	}
	return s
}

// stop sends SIGTERM and waits for the process to exit.
func (s *served) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not stop within 30s of SIGTERM:\n%s", s.stderr)
	}
}

// apiResponse is what one API call got.
type apiResponse struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (r apiResponse) str(name string) string { s, _ := r.body[name].(string); return s }

// call makes one API request with the key in the header given by form
// ("api-key", "bearer" or "x-api-key"; empty for no key).
func call(t *testing.T, method, url, form, token, body string) apiResponse {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	switch form {
	case "api-key":
		req.Header.Set("Authorization", "Api-Key "+token)
	case "bearer":
		req.Header.Set("Authorization", "Bearer "+token)
	case "x-api-key":
		req.Header.Set("X-Api-Key", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := apiResponse{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &r.body); err != nil {
			t.Fatalf("%s %s: body %q: %v", method, url, b, err)
		}
	}
	return r
}

// callXFF is call with GET, the key as Api-Key and an X-Forwarded-For
// header.
func callXFF(t *testing.T, url, token, xff string) apiResponse {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Api-Key "+token)
	req.Header.Set("X-Forwarded-For", xff)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := apiResponse{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &r.body); err != nil {
			t.Fatalf("GET %s: body %q: %v", url, b, err)
		}
	}
	return r
}

// expect fails the test unless r has the status and, when code is set, is
// a problem with that code.
func expect(t *testing.T, what string, r apiResponse, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d: %s", what, r.status, status, r.raw)
	}
	if code != "" && (r.str("code") != code || r.header.Get("Content-Type") != "application/problem+json") {
		t.Fatalf("%s: code %q (%s), want %q", what, r.str("code"), r.header.Get("Content-Type"), code)
	}
}

// TestServe builds the binary, makes an admin key with the CLI, starts
// "apikey serve" on port 0 and drives the whole API over HTTP, on SQLite
// and on PostgreSQL; SIGTERM then stops it cleanly.
func TestServe(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			env := []string{"APIKEY_DB=" + databaseFor(t, backend)}
			admin := adminToken(t, dir, env)
			s := startServe(t, dir, env)
			u := s.url

			expect(t, "healthz", call(t, "GET", u+"/healthz", "", "", ""), 200, "")
			expect(t, "readyz", call(t, "GET", u+"/readyz", "", "", ""), 200, "")
			expect(t, "openapi", call(t, "GET", u+"/v1/openapi.json", "", "", ""), 200, "")
			expect(t, "no key", call(t, "GET", u+"/v1/keys", "", "", ""), 401, "missing_key")
			expect(t, "junk", call(t, "GET", u+"/nope", "", "", ""), 404, "not_found")

			// Create a key and a verifier key.
			c := call(t, "POST", u+"/v1/keys", "api-key", admin,
				`{"name":"demo","owner":"acme","scopes":["invoices:read"],"metadata":{"env":"test"},"expires_in":"30d"}`)
			expect(t, "create", c, 201, "")
			demo, id := c.str("key"), c.str("id")
			if !strings.HasPrefix(demo, "ak_"+id+"_") || c.header.Get("Location") != "/v1/keys/"+id || c.header.Get("Cache-Control") != "no-store" {
				t.Fatalf("create: %v %s", c.header, c.raw)
			}
			c = call(t, "POST", u+"/v1/keys", "bearer", admin, `{"name":"backend","scopes":["apikey:verify"]}`)
			expect(t, "create verifier", c, 201, "")
			verifier := c.str("key")

			// Read.
			g := call(t, "GET", u+"/v1/keys/"+id, "x-api-key", admin, "")
			expect(t, "get", g, 200, "")
			if g.str("name") != "demo" || g.str("state") != "active" || g.str("key") != "" {
				t.Errorf("get: %s", g.raw)
			}
			l := call(t, "GET", u+"/v1/keys?owner=acme&limit=10", "api-key", admin, "")
			expect(t, "list", l, 200, "")
			if keys, _ := l.body["keys"].([]any); len(keys) != 1 {
				t.Errorf("list: %s", l.raw)
			}
			expect(t, "list bad limit", call(t, "GET", u+"/v1/keys?limit=-1", "api-key", admin, ""), 400, "invalid_input")

			// whoami under each header form.
			for _, form := range []string{"api-key", "bearer", "x-api-key"} {
				w := call(t, "GET", u+"/v1/whoami", form, demo, "")
				expect(t, "whoami "+form, w, 200, "")
				if w.str("id") != id {
					t.Errorf("whoami %s: %s", form, w.raw)
				}
			}

			// Verify on behalf of another backend.
			v := call(t, "POST", u+"/v1/verify", "api-key", verifier, `{"key":"`+demo+`","scopes":["invoices:read"]}`)
			expect(t, "verify", v, 200, "")
			if v.body["valid"] != true || v.body["code"] != "" {
				t.Errorf("verify: %s", v.raw)
			}
			v = call(t, "POST", u+"/v1/verify", "api-key", verifier, `{"key":"`+demo+`","scopes":["invoices:write"]}`)
			if v.body["valid"] != false || v.body["code"] != "insufficient_scope" || v.body["key"] != nil {
				t.Errorf("verify without the scope: %s", v.raw)
			}
			expect(t, "verifier lists", call(t, "GET", u+"/v1/keys", "api-key", verifier, ""), 403, "insufficient_scope")

			// Change, roll.
			p := call(t, "PATCH", u+"/v1/keys/"+id, "api-key", admin, `{"name":"demo 2","expires_at":null}`)
			expect(t, "patch", p, 200, "")
			if p.str("name") != "demo 2" || p.body["expires_at"] != nil {
				t.Errorf("patch: %s", p.raw)
			}
			expect(t, "patch unknown field", call(t, "PATCH", u+"/v1/keys/"+id, "api-key", admin, `{"nmae":"x"}`), 400, "invalid_json")
			ro := call(t, "POST", u+"/v1/keys/"+id+"/roll", "api-key", admin, "")
			expect(t, "roll", ro, 200, "")
			rolled := ro.str("key")
			if rolled == "" || rolled == demo || ro.str("id") != id {
				t.Fatalf("roll: %s", ro.raw)
			}
			expect(t, "old secret", call(t, "GET", u+"/v1/whoami", "api-key", demo, ""), 401, "invalid_key")
			expect(t, "new secret", call(t, "GET", u+"/v1/whoami", "api-key", rolled, ""), 200, "")

			// Revoke: refused everywhere, frozen, still visible.
			expect(t, "revoke", call(t, "POST", u+"/v1/keys/"+id+"/revoke", "api-key", admin, ""), 200, "")
			expect(t, "revoke again", call(t, "POST", u+"/v1/keys/"+id+"/revoke", "api-key", admin, ""), 200, "")
			expect(t, "whoami revoked", call(t, "GET", u+"/v1/whoami", "bearer", rolled, ""), 401, "key_revoked")
			v = call(t, "POST", u+"/v1/verify", "api-key", verifier, `{"key":"`+rolled+`"}`)
			if v.status != 200 || v.body["valid"] != false || v.body["code"] != "key_revoked" {
				t.Errorf("verify revoked: %s", v.raw)
			}
			expect(t, "patch revoked", call(t, "PATCH", u+"/v1/keys/"+id, "api-key", admin, `{"name":"x"}`), 409, "key_revoked")
			expect(t, "roll revoked", call(t, "POST", u+"/v1/keys/"+id+"/roll", "api-key", admin, ""), 409, "key_revoked")
			// The CLI on the same database agrees.
			if r := execute(t, dir, "", env, "verify", rolled); r.code != 1 || !strings.Contains(r.stdout, "revoked") {
				t.Errorf("CLI verify of the revoked key: %+v", r)
			}

			// Delete.
			d := call(t, "DELETE", u+"/v1/keys/"+id, "api-key", admin, "")
			expect(t, "delete", d, 204, "")
			expect(t, "get deleted", call(t, "GET", u+"/v1/keys/"+id, "api-key", admin, ""), 404, "not_found")

			s.stop(t)
			if s.err != nil {
				t.Errorf("serve exited with %v after SIGTERM:\n%s", s.err, s.stderr)
			}
			logs := s.stderr.String()
			if !strings.HasSuffix(logs, "apikey: stopped\n") {
				t.Errorf("no clean stop in the log:\n%s", logs)
			}
			if !strings.Contains(logs, `msg="apikey: request" method=GET path=/v1/whoami status=200`) {
				t.Errorf("no request records in the log:\n%s", logs)
			}
			for _, k := range []string{admin, demo, rolled, verifier, apikeytest.SecretOf(admin), apikeytest.SecretOf(rolled)} {
				if strings.Contains(logs, k) {
					t.Errorf("the log holds a key:\n%s", logs)
					break
				}
			}
		})
	}
}

// metric returns the value of one sample of GET /metrics, such as
// `apikey_cache_requests_total{result="hit"}`, or -1 when it is absent.
func metric(t *testing.T, url, series string) float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return -1
}

// TestServeMetrics checks /metrics of the binary: verification outcomes
// and cache hits after repeated whoami calls.
func TestServeMetrics(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := []string{"APIKEY_DB=sqlite:" + filepath.Join(dir, "apikey.db")}
	r := execute(t, dir, "", env, "create", "--name", "demo")
	if r.code != 0 {
		t.Fatalf("create: %+v", r)
	}
	demo := strings.TrimSpace(r.stdout)
	s := startServe(t, dir, env)
	for range 5 {
		expect(t, "whoami", call(t, "GET", s.url+"/v1/whoami", "api-key", demo, ""), 200, "")
	}
	expect(t, "junk key", call(t, "GET", s.url+"/v1/whoami", "api-key", apikeytest.ForgeToken("ak", "AAAAAAAAAAAA", strings.Repeat("x", 32)), ""), 401, "invalid_key")
	if v := metric(t, s.url, `apikey_verifications_total{outcome="valid"}`); v != 5 {
		t.Errorf("valid verifications %v, want 5", v)
	}
	if v := metric(t, s.url, `apikey_verifications_total{outcome="invalid_key"}`); v != 1 {
		t.Errorf("invalid verifications %v, want 1", v)
	}
	if v := metric(t, s.url, `apikey_cache_requests_total{result="hit"}`); v < 4 {
		t.Errorf("cache hits %v, want at least 4", v)
	}
	if v := metric(t, s.url, "go_goroutines"); v <= 0 {
		t.Errorf("no Go collector: go_goroutines %v", v)
	}
	if v := metric(t, s.url, "apikey_events_dropped_total"); v != 0 {
		t.Errorf("events_dropped_total %v", v)
	}

	// --no-cache: every verification reads the store.
	s2 := startServe(t, dir, env, "--no-cache")
	for range 3 {
		expect(t, "whoami", call(t, "GET", s2.url+"/v1/whoami", "api-key", demo, ""), 200, "")
	}
	if hits, misses := metric(t, s2.url, `apikey_cache_requests_total{result="hit"}`), metric(t, s2.url, `apikey_cache_requests_total{result="miss"}`); hits != 0 || misses != 0 {
		t.Errorf("--no-cache: hits %v, misses %v", hits, misses)
	}
	want(t, e2eRun(t, dir, env, "serve", "--cache-ttl", "0s"), 2, "", "apikey: invalid --cache-ttl 0s: must be positive, such as 30s\n")
	want(t, e2eRun(t, dir, env, "serve", "--no-cache", "--cache-ttl", "1m"), 2, "", "apikey: --cache-ttl and --no-cache cannot be combined: remove one\n")
	want(t, e2eRun(t, dir, env, "serve", "--redis", "nope"), 2, "", "apikey: invalid Redis address \"nope\" (--redis): want HOST:PORT, such as 127.0.0.1:6379\n")
}

func e2eRun(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	return execute(t, dir, "", env, args...)
}

// pair is two "apikey serve" processes over one database, and an admin key.
type pair struct {
	a, b  *served
	admin string
}

// startPair starts two servers over db with args, after making an admin
// key with the CLI.
func startPair(t *testing.T, db string, args ...string) *pair {
	t.Helper()
	dir := t.TempDir()
	env := []string{"APIKEY_DB=" + db}
	r := execute(t, dir, "", env, "create", "--name", "admin", "--scope", "apikey:admin")
	if r.code != 0 {
		t.Fatalf("create admin: %+v", r)
	}
	return &pair{a: startServe(t, dir, env, args...), b: startServe(t, dir, env, args...), admin: strings.TrimSpace(r.stdout)}
}

// cachedKey creates a key on A and calls whoami on B until B answers it
// from its cache, which it does only once its invalidation listener is up.
func (p *pair) cachedKey(t *testing.T) (token, id string) {
	t.Helper()
	c := call(t, "POST", p.a.url+"/v1/keys", "api-key", p.admin, `{"name":"cross-instance"}`)
	expect(t, "create", c, 201, "")
	token, id = c.str("key"), c.str("id")
	deadline := time.Now().Add(30 * time.Second)
	for {
		before := metric(t, p.b.url, `apikey_cache_requests_total{result="hit"}`)
		expect(t, "whoami on B", call(t, "GET", p.b.url+"/v1/whoami", "api-key", token, ""), 200, "")
		if metric(t, p.b.url, `apikey_cache_requests_total{result="hit"}`) > before {
			return token, id
		}
		if time.Now().After(deadline) {
			t.Fatalf("B never answered from its cache:\n%s", p.b.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// revokeAndWait revokes id on A and polls whoami on B every interval
// until it answers 401 key_revoked, or until limit has passed. It returns
// the time from the revoke's answer to the first rejection.
func (p *pair) revokeAndWait(t *testing.T, token, id string, interval, limit time.Duration) time.Duration {
	t.Helper()
	expect(t, "revoke on A", call(t, "POST", p.a.url+"/v1/keys/"+id+"/revoke", "api-key", p.admin, ""), 200, "")
	revoked := time.Now()
	for {
		r := call(t, "GET", p.b.url+"/v1/whoami", "api-key", token, "")
		if r.status == 401 && r.str("code") == "key_revoked" {
			return time.Since(revoked)
		}
		if r.status != 200 {
			t.Fatalf("whoami on B after the revoke: %d %s", r.status, r.raw)
		}
		if time.Since(revoked) > limit {
			t.Fatalf("B still accepts the key %v after it was revoked on A", limit)
		}
		if interval > 0 {
			time.Sleep(interval)
		}
	}
}

// TestServeCrossInstanceRevocation runs two servers over one PostgreSQL
// schema: a key revoked on A is refused by B, which had it cached, within
// a second (the target is 100 ms at p99; the bound here is loose so that
// a busy CI machine stays green).
func TestServeCrossInstanceRevocation(t *testing.T) {
	t.Parallel()
	p := startPair(t, postgresURL(t))
	token, id := p.cachedKey(t)
	d := p.revokeAndWait(t, token, id, 5*time.Millisecond, time.Second)
	t.Logf("revoked on A, refused by B after %v", d)
}

// revocationBackends are the invalidation paths the revocation benchmark
// measures: PostgreSQL NOTIFY, and Redis pub/sub between two servers over
// one SQLite file.
func revocationPair(t *testing.T, backend string) *pair {
	t.Helper()
	switch backend {
	case "postgres-notify":
		return startPair(t, postgresURL(t))
	default: // "redis"
		addr := os.Getenv("APIKEY_TEST_REDIS_ADDR")
		if addr == "" {
			t.Skip("set APIKEY_TEST_REDIS_ADDR (for example 127.0.0.1:6379) to measure Redis invalidation")
		}
		return startPair(t, "sqlite:"+filepath.Join(t.TempDir(), "apikey.db"), "--redis", addr)
	}
}

// percentile returns the p-th percentile (0 to 100) of sorted durations,
// nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// TestRevocationLatency measures, by hand, how long a key revoked on A
// stays accepted by B, which had it cached: 200 trials per invalidation
// path, B polled in a loop, percentiles from the revoke's answer to the
// first 401 (target: p99 ≤ 100 ms). Then, under load (8 workers hammering
// B with the key), it counts the requests B accepted that were sent more
// than 100 ms after the revoke returned (target: 0).
//
//	APIKEY_BENCH_REVOCATION=1 APIKEY_TEST_POSTGRES_DSN=... APIKEY_TEST_REDIS_ADDR=127.0.0.1:6379 \
//	    go test ./cmd/apikey -run TestRevocationLatency -v -count 1
func TestRevocationLatency(t *testing.T) {
	if os.Getenv("APIKEY_BENCH_REVOCATION") != "1" {
		t.Skip("set APIKEY_BENCH_REVOCATION=1 to measure revocation latency (about a minute)")
	}
	trials := 200
	if n, err := strconv.Atoi(os.Getenv("APIKEY_BENCH_TRIALS")); err == nil && n > 0 {
		trials = n
	}
	for _, backend := range []string{"postgres-notify", "redis"} {
		t.Run(backend, func(t *testing.T) {
			p := revocationPair(t, backend)
			lat := make([]time.Duration, 0, trials)
			for range trials {
				token, id := p.cachedKey(t)
				lat = append(lat, p.revokeAndWait(t, token, id, 0, 5*time.Second))
			}
			slices.Sort(lat)
			t.Logf("%s: %d trials, revocation on A -> rejection on B: p50 %v, p95 %v, p99 %v, max %v",
				backend, trials, percentile(lat, 50), percentile(lat, 95), percentile(lat, 99), lat[len(lat)-1])
			if p99 := percentile(lat, 99); p99 > 100*time.Millisecond {
				t.Errorf("p99 %v is over the 100 ms target", p99)
			}

			// Under load.
			const workers, loadTrials, bound = 8, 20, 100 * time.Millisecond
			var accepted, late, total, lateByAnswer int
			var worst time.Duration
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
			for range loadTrials {
				token, id := p.cachedKey(t)
				var revoked atomic.Int64 // UnixNano of the revoke's answer; 0 before
				stop := make(chan struct{})
				type tally struct {
					accepted, late, total, lateByAnswer int
					worst                               time.Duration
				}
				results := make(chan tally, workers)
				for range workers {
					go func() {
						var c tally
						for {
							select {
							case <-stop:
								results <- c
								return
							default:
							}
							sent := time.Now()
							req, _ := http.NewRequest("GET", p.b.url+"/v1/whoami", nil)
							req.Header.Set("Authorization", "Api-Key "+token)
							resp, err := client.Do(req)
							if err != nil {
								continue
							}
							io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
							answered := time.Now()
							c.total++
							if resp.StatusCode != 200 {
								continue
							}
							c.accepted++
							if r := revoked.Load(); r != 0 {
								if d := answered.Sub(time.Unix(0, r)); d > c.worst {
									c.worst = d
								}
								if sent.Sub(time.Unix(0, r)) > bound {
									c.late++
								}
								if answered.Sub(time.Unix(0, r)) > bound {
									c.lateByAnswer++
								}
							}
						}
					}()
				}
				time.Sleep(200 * time.Millisecond)
				expect(t, "revoke on A", call(t, "POST", p.a.url+"/v1/keys/"+id+"/revoke", "api-key", p.admin, ""), 200, "")
				revoked.Store(time.Now().UnixNano())
				time.Sleep(400 * time.Millisecond)
				close(stop)
				for range workers {
					c := <-results
					accepted += c.accepted
					late += c.late
					total += c.total
					lateByAnswer += c.lateByAnswer
					worst = max(worst, c.worst)
				}
			}
			t.Logf("%s under load (%d workers, %d revocations): %d requests, %d accepted; accepted after the revoke: latest answered %v after it; sent more than %v after it: %d; answered more than %v after it: %d",
				backend, workers, loadTrials, total, accepted, worst, bound, late, bound, lateByAnswer)
			if late > 0 {
				t.Errorf("%d requests sent more than %v after the revoke were accepted", late, bound)
			}
		})
	}
}

// The admin site is served under /admin/ by the binary: a user made with
// "apikey admin create-user" logs in over real HTTP and sees the keys.
func TestServeAdminSite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := []string{"APIKEY_DB=sqlite:" + filepath.Join(dir, "apikey.db")}
	if r := execute(t, dir, "correct horse battery staple\n", env, "admin", "create-user", "ada@example.com"); r.code != 0 {
		t.Fatalf("admin create-user: %+v", r)
	}
	if r := execute(t, dir, "", env, "create", "--name", "visible-in-admin"); r.code != 0 {
		t.Fatalf("create: %+v", r)
	}
	s := startServe(t, dir, env)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	resp, err := client.Get(s.url + "/admin/keys")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Request.URL.Path != "/admin/login" || !strings.Contains(string(page), `name="password"`) {
		t.Fatalf("GET /admin/keys signed out ended at %s, want the login form", resp.Request.URL)
	}
	resp, err = client.PostForm(s.url+"/admin/login", url.Values{"email": {"ada@example.com"}, "password": {"correct horse battery staple"}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "visible-in-admin") {
		t.Errorf("after login: %d at %s, want the key list with the key:\n%.500s", resp.StatusCode, resp.Request.URL, page)
	}
}

func TestForwardedFor(t *testing.T) {
	for _, tc := range []struct {
		xff  []string
		want string
	}{
		{nil, "192.0.2.1"},
		{[]string{"198.51.100.7"}, "198.51.100.7"},
		{[]string{"203.0.113.9, 198.51.100.7"}, "198.51.100.7"},
		{[]string{"203.0.113.9", "198.51.100.8 "}, "198.51.100.8"},
		{[]string{""}, "192.0.2.1"},
	} {
		r := httptest.NewRequest("POST", "/admin/login", nil)
		r.RemoteAddr = "192.0.2.1:4321"
		for _, v := range tc.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := forwardedFor(r); got != tc.want {
			t.Errorf("forwardedFor(%q) = %q, want %q", tc.xff, got, tc.want)
		}
	}
}

// --secure-cookies marks the admin session cookie Secure even over plain
// HTTP (TLS ends at a proxy in front).
func TestServeSecureCookies(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := []string{"APIKEY_DB=sqlite:" + filepath.Join(dir, "apikey.db")}
	if r := execute(t, dir, "correct horse battery staple\n", env, "admin", "create-user", "ada@example.com"); r.code != 0 {
		t.Fatalf("admin create-user: %+v", r)
	}
	s := startServe(t, dir, env, "--secure-cookies")
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.PostForm(s.url+"/admin/login", url.Values{"email": {"ada@example.com"}, "password": {"correct horse battery staple"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookie := resp.Header.Get("Set-Cookie")
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(cookie, "Secure") || !strings.Contains(cookie, "HttpOnly") {
		t.Errorf("login: %d, Set-Cookie %q; want 303 and a Secure, HttpOnly cookie", resp.StatusCode, cookie)
	}
}

// TestServePprof checks that --pprof is off by default, accepts only
// loopback addresses, and serves the profiles on a listener of its own.
func TestServePprof(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, addr := range []string{"0.0.0.0:6060", ":6060", "192.0.2.1:6060", "example.com:6060", "127.0.0.1", "127.0.0.1:99999"} {
		want(t, e.run("serve", "--pprof", addr), 2, "",
			`apikey: invalid --pprof "`+addr+`": want a loopback HOST:PORT, such as 127.0.0.1:6060 (port 0 picks a free port)`+"\n")
	}

	dir := t.TempDir()
	db := []string{"APIKEY_DB=sqlite:" + filepath.Join(dir, "keys.db")}
	plain := startServe(t, dir, db)
	if strings.Contains(plain.stderr.String(), "pprof") {
		t.Errorf("pprof without --pprof:\n%s", plain.stderr)
	}
	if r := call(t, "GET", plain.url+"/debug/pprof/", "", "", ""); r.status != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/ on the API: %d, want 404", r.status)
	}
	plain.stop(t)

	s := startServe(t, dir, db, "--pprof", "127.0.0.1:0")
	m := regexp.MustCompile(`apikey: pprof on (http://127\.0\.0\.1:[0-9]+)/debug/pprof/`).FindStringSubmatch(s.stderr.String())
	if m == nil {
		t.Fatalf("no pprof address logged:\n%s", s.stderr)
	}
	resp, err := http.Get(m[1] + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "serve") {
		t.Errorf("GET /debug/pprof/cmdline: %d %q", resp.StatusCode, body)
	}
	s.stop(t)
}

// TestServeLogFlags checks --log-format and --log-level: bad values are
// usage errors; json writes one object per request; warn leaves the
// request records out.
func TestServeLogFlags(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	want(t, e.run("serve", "--log-format", "xml"), 2, "", `apikey: invalid --log-format "xml": want text or json`+"\n")
	for _, l := range []string{"loud", "", "info+1", "-4"} {
		want(t, e.run("serve", "--log-level", l), 2, "", `apikey: invalid --log-level "`+l+`": want debug, info, warn or error`+"\n")
	}

	dir := t.TempDir()
	env := []string{"APIKEY_DB=sqlite:" + filepath.Join(dir, "keys.db")}
	r := execute(t, dir, "", env, "create", "--name", "me")
	if r.code != 0 {
		t.Fatalf("create: %+v", r)
	}
	token := strings.TrimSpace(r.stdout)
	id := strings.Split(token, "_")[1]

	s := startServe(t, dir, env, "--log-format", "json")
	expect(t, "whoami", call(t, "GET", s.url+"/v1/whoami", "api-key", token, ""), 200, "")
	s.stop(t)
	found := false
	for _, line := range strings.Split(s.stderr.String(), "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("not one JSON object per line: %q: %v", line, err)
			continue
		}
		if rec["msg"] == "apikey: request" && rec["path"] == "/v1/whoami" && rec["key_id"] == id && rec["status"] == 200.0 && rec["level"] == "INFO" {
			found = true
		}
	}
	if !found || strings.Contains(s.stderr.String(), token) {
		t.Errorf("--log-format json: no JSON record of the whoami request, or the key logged:\n%s", s.stderr)
	}

	s = startServe(t, dir, env, "--log-level", "WARN")
	expect(t, "whoami", call(t, "GET", s.url+"/v1/whoami", "api-key", token, ""), 200, "")
	s.stop(t)
	if strings.Contains(s.stderr.String(), "apikey: request") {
		t.Errorf("--log-level warn logged a request record:\n%s", s.stderr)
	}
}

// TestServeUnlock locks an account of the running server's admin site out
// with 5 wrong passwords, then runs "apikey admin users unlock": the right
// password gets in at once, without restarting the server.
func TestServeUnlock(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			env := []string{"APIKEY_DB=" + databaseFor(t, backend)}
			const email, password = "ada@example.com", "correct horse battery staple"
			if r := execute(t, dir, password+"\n", env, "admin", "create-user", email); r.code != 0 {
				t.Fatalf("admin create-user: %+v", r)
			}
			s := startServe(t, dir, env)
			client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			login := func(pw string) int {
				t.Helper()
				resp, err := client.PostForm(s.url+"/admin/login", url.Values{"email": {email}, "password": {pw}})
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			for i := range 5 {
				if code := login("wrong password " + strconv.Itoa(i)); code != http.StatusOK {
					t.Fatalf("wrong password %d: %d, want 200", i, code)
				}
			}
			if code := login(password); code != http.StatusTooManyRequests {
				t.Fatalf("right password after 5 failures: %d, want 429", code)
			}
			if r := execute(t, dir, "", env, "admin", "users", "unlock", email); r.code != 0 {
				t.Fatalf("admin users unlock: %+v", r)
			}
			if code := login(password); code != http.StatusSeeOther {
				t.Errorf("right password after the unlock: %d, want 303", code)
			}
			if r := execute(t, dir, "", env, "admin", "users", "unlock", "nobody@example.com"); r.code != 1 || r.stderr != "apikey: no admin user nobody@example.com\n" {
				t.Errorf("unlock of an unknown user: %+v", r)
			}
		})
	}
}
