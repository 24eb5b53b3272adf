package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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

// startServe starts the binary's serve command on port 0 in dir and
// returns once it has logged its address. The process is killed, by its
// PID, when the test ends if it is still running.
func startServe(t *testing.T, dir string, env []string) *served {
	t.Helper()
	cmd := exec.Command(binary(t), "serve", "--addr", "127.0.0.1:0")
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
			r := execute(t, dir, "", env, "create", "--name", "admin", "--scope", "apikey:admin")
			if r.code != 0 {
				t.Fatalf("create admin: %+v", r)
			}
			admin := strings.TrimSpace(r.stdout)
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
			for _, k := range []string{admin, demo, rolled, verifier, secretOf(admin), secretOf(rolled)} {
				if strings.Contains(logs, k) {
					t.Errorf("the log holds a key:\n%s", logs)
					break
				}
			}
		})
	}
}
