package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func testRedisAddr(t *testing.T) string {
	t.Helper()
	addr := os.Getenv("APIKEY_TEST_REDIS_ADDR")
	if addr == "" {
		t.Skip("set APIKEY_TEST_REDIS_ADDR (for example 127.0.0.1:6379) to run the Redis tests")
	}
	return addr
}

// subscribe subscribes to the invalidation channel on addr and returns a
// function that waits for a message carrying id.
func subscribe(t *testing.T, addr string) func(id string) {
	t.Helper()
	client := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { client.Close() })
	ctx := context.Background()
	ps := client.Subscribe(ctx, redisChannel)
	t.Cleanup(func() { ps.Close() })
	if _, err := ps.Receive(ctx); err != nil { // the confirmation
		t.Fatal(err)
	}
	return func(id string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			ctx, cancel := context.WithDeadline(ctx, deadline)
			msg, err := ps.ReceiveMessage(ctx)
			cancel()
			if err != nil {
				t.Fatalf("no invalidation of %s published on %s: %v", id, redisChannel, err)
			}
			if msg.Payload == id {
				return
			}
		}
	}
}

// TestCLIPublishesToRedis checks that the CLI's changes reach Redis, from
// APIKEY_REDIS_ADDR or --redis, like the server's.
func TestCLIPublishesToRedis(t *testing.T) {
	t.Parallel()
	addr := testRedisAddr(t)
	published := subscribe(t, addr)
	e := newEnv(t)
	_, revoked := e.create("--name", "revoked by the CLI")
	_, deleted := e.create("--name", "deleted by the CLI")

	e.vars["APIKEY_REDIS_ADDR"] = addr
	if r := e.run("revoke", revoked); r.code != 0 || r.stderr != "" {
		t.Fatalf("revoke with APIKEY_REDIS_ADDR: %+v", r)
	}
	published(revoked)

	delete(e.vars, "APIKEY_REDIS_ADDR")
	if r := e.run("--redis", addr, "delete", deleted); r.code != 0 || r.stderr != "" {
		t.Fatalf("delete --redis: %+v", r)
	}
	published(deleted)
}

func TestCLIRedisUnreachable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, id := e.create("--name", "k")
	e.vars["APIKEY_REDIS_ADDR"] = "127.0.0.1:1" // nothing listens on port 1
	r := e.run("revoke", id)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "revoked: "+id) {
		t.Fatalf("revoke with Redis down: %+v; want it revoked, exit 0", r)
	}
	if !strings.HasPrefix(r.stderr, "apikey: warning: invalidation not published: key "+id+": ") {
		t.Errorf("stderr = %q, want a warning that the invalidation was not published", r.stderr)
	}
	if strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("stderr = %q, want one line", r.stderr)
	}
}

func TestCLIRedisBadAddress(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	want(t, e.run("list", "--redis", "nope"), 2, "", "apikey: invalid Redis address \"nope\" (--redis): want HOST:PORT, such as 127.0.0.1:6379\n")
}

// TestServeSeesCLIRevocationOverRedis is the whole path: a key cached by a
// server run with --redis is refused by it, within a second, once the CLI
// has revoked it with the same Redis.
func TestServeSeesCLIRevocationOverRedis(t *testing.T) {
	t.Parallel()
	addr := testRedisAddr(t)
	dir := t.TempDir()
	env := []string{"APIKEY_DB=sqlite:" + filepath.Join(dir, "apikey.db"), "APIKEY_REDIS_ADDR=" + addr}
	p := &pair{}
	p.admin = adminToken(t, dir, env)
	p.a = startServe(t, dir, env)
	p.b = p.a
	token, id := p.cachedKey(t)
	if r := execute(t, dir, "", env, "revoke", id); r.code != 0 {
		t.Fatalf("revoke: %+v", r)
	}
	revoked := time.Now()
	for {
		c := call(t, "GET", p.a.url+"/v1/whoami", "api-key", token, "")
		if c.status == 401 && c.str("code") == "key_revoked" {
			break
		}
		if time.Since(revoked) > time.Second {
			t.Fatalf("the server still accepts a key the CLI revoked %v ago: %d %s", time.Since(revoked), c.status, c.raw)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
