package main

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/sqlite"
)

// ghost records, in the SQLite database at path, a live server that never
// applies anything.
func ghost(t *testing.T, path string) {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.PutInstance(context.Background(), apikey.Instance{ID: "ghost-id", Name: "ghost"}, time.Minute); err != nil {
		t.Fatal(err)
	}
}

func TestCLIStrict(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, id := e.create("--name", "k")
	r := e.run("revoke", "--strict", id)
	if r.code != 0 || r.stderr != "" || !regexp.MustCompile(`^revoked: `+id+` \(k\) at \S+\nacknowledged by 0 instances in \S+\n$`).MatchString(r.stdout) {
		t.Errorf("revoke --strict with no server: %+v", r)
	}
	_, id = e.create("--name", "j")
	if r := e.run("revoke", "--strict", "--json", id); r.code != 0 || !strings.HasPrefix(r.stdout, "{") || strings.Contains(r.stdout, "acknowledged") {
		t.Errorf("revoke --strict --json: %+v, want the key as JSON alone", r)
	}

	ghost(t, e.vars["APIKEY_DB"])
	_, id = e.create("--name", "k2")
	start := time.Now()
	r = e.run("revoke", "--strict", id)
	if r.code != 2 || !strings.HasPrefix(r.stdout, "revoked: "+id+" (k2) at ") || strings.Count(r.stdout, "\n") != 1 ||
		r.stderr != "apikey: change applied, but not acknowledged within 3s by instance ghost\n" {
		t.Errorf("revoke --strict with a server that never acknowledges: %+v", r)
	}
	if d := time.Since(start); d < 3*time.Second {
		t.Errorf("revoke --strict gave up after %v, before 3s", d)
	}
	if r := e.run("show", id); !strings.Contains(r.stdout, "revoked") {
		t.Errorf("after a strict revoke that was not acknowledged, show: %+v; want the key revoked", r)
	}

	// APIKEY_STRICT_REVOCATION makes delete strict; --strict=false wins.
	e.vars[strictEnv] = "true"
	_, id = e.create("--name", "k3")
	want(t, e.run("delete", "--strict=false", id), 0, "deleted: "+id+"\n", "")
	_, id = e.create("--name", "k4")
	want(t, e.run("delete", id), 2, "deleted: "+id+"\n", "apikey: change applied, but not acknowledged within 3s by instance ghost\n")
	e.vars[strictEnv] = "maybe"
	want(t, e.run("revoke", id), 2, "", "apikey: invalid APIKEY_STRICT_REVOCATION \"maybe\": want true or false\n")
}

// TestServeSeesCLIRevocationOverSQLite: a server on SQLite, without Redis,
// refuses a key revoked with the CLI within its poll interval (250ms), by
// reading the database's change log; after "revoke --strict" it refuses
// the key at once; and a server run with --strict-revocation answers its
// API revocations only once the other server has applied them.
func TestServeSeesCLIRevocationOverSQLite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := []string{"APIKEY_DB=sqlite:" + filepath.Join(dir, "apikey.db")}
	p := &pair{admin: adminToken(t, dir, env)}
	p.b = startServe(t, dir, env)
	p.a = startServe(t, dir, env, "--strict-revocation")

	// The CLI, no Redis: within the poll interval.
	token, id := p.cachedKey(t)
	if r := execute(t, dir, "", env, "revoke", id); r.code != 0 {
		t.Fatalf("revoke: %+v", r)
	}
	revoked := time.Now()
	for {
		c := call(t, "GET", p.b.url+"/v1/whoami", "api-key", token, "")
		if c.status == 401 && c.str("code") == "key_revoked" {
			break
		}
		if time.Since(revoked) > 750*time.Millisecond {
			t.Fatalf("the server still accepts a key the CLI revoked %v ago (poll interval 250ms): %d %s", time.Since(revoked), c.status, c.raw)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("CLI revoke -> refused by the server after %v", time.Since(revoked))

	// The CLI with --strict: refused at once, by both servers.
	for i := range 5 {
		token, id := p.cachedKey(t)
		r := execute(t, dir, "", env, "revoke", "--strict", id)
		if r.code != 0 || !strings.Contains(r.stdout, "\nacknowledged by 2 instances in ") {
			t.Fatalf("revoke --strict with two servers: %+v", r)
		}
		for _, s := range []*served{p.a, p.b} {
			if c := call(t, "GET", s.url+"/v1/whoami", "api-key", token, ""); c.status != 401 {
				t.Errorf("trial %d: a server accepted the key after revoke --strict returned: %d %s", i, c.status, c.raw)
			}
		}
	}

	// The API of a server run with --strict-revocation.
	token, id = p.cachedKey(t)
	c := call(t, "POST", p.a.url+"/v1/keys/"+id+"/revoke", "api-key", p.admin, "")
	expect(t, "revoke on the strict server", c, 200, "")
	if got := c.header.Get("Apikey-Acknowledged-Instances"); got != "2" {
		t.Errorf("revoke on the strict server: Apikey-Acknowledged-Instances = %q, want 2", got)
	}
	if c := call(t, "GET", p.b.url+"/v1/whoami", "api-key", token, ""); c.status != 401 {
		t.Errorf("the other server accepted the key after the strict revoke answered: %d %s", c.status, c.raw)
	}
}
