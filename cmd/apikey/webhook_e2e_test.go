package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-apikey/apikey/webhook"
)

// hookReceiver is a real HTTP receiver of webhooks whose behaviour the
// test switches: down (503), hang (no answer until released), up (204).
type hookReceiver struct {
	*httptest.Server
	mode    atomic.Value // "down", "hang" or "up"
	release chan struct{}
	hanging atomic.Int64
	secret  webhook.Secret

	mu       sync.Mutex
	requests int
	ids      map[int64]map[string]bool // event_id -> webhook-ids seen
	ok       map[int64]bool            // event_id -> answered 2xx
	bad      []string
}

func newHookReceiver(t *testing.T) *hookReceiver {
	r := &hookReceiver{release: make(chan struct{}), ids: map[int64]map[string]bool{}, ok: map[int64]bool{}}
	r.mode.Store("down")
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var p struct {
			Type string `json:"type"`
			Data struct {
				EventID int64 `json:"event_id"`
			} `json:"data"`
		}
		r.mu.Lock()
		r.requests++
		secret := r.secret
		if err := json.Unmarshal(body, &p); err != nil || p.Data.EventID == 0 {
			r.bad = append(r.bad, "undecodable body "+string(body))
		} else if err := webhook.Verify(req.Header, body, time.Now(), 0, secret); err != nil {
			r.bad = append(r.bad, "bad signature: "+err.Error())
		}
		if r.ids[p.Data.EventID] == nil {
			r.ids[p.Data.EventID] = map[string]bool{}
		}
		r.ids[p.Data.EventID][req.Header.Get("webhook-id")] = true
		r.mu.Unlock()
		switch r.mode.Load() {
		case "down":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "hang":
			r.hanging.Add(1)
			select {
			case <-r.release:
			case <-req.Context().Done():
			}
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			r.mu.Lock()
			r.ok[p.Data.EventID] = true
			r.mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	t.Cleanup(func() {
		select {
		case <-r.release:
		default:
			close(r.release)
		}
		r.Close()
	})
	return r
}

// setSecret sets the secret that the receiver verifies with. (The
// processes of the test send nothing before, but the race detector
// cannot know it.)
func (r *hookReceiver) setSecret(s webhook.Secret) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secret = s
}

func (r *hookReceiver) counts() (requests, delivered int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests, len(r.ok)
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestWebhookRecovery: the receiver is down for a while, then hangs while
// the sending instance (the real binary) is killed with SIGKILL in the
// middle of deliveries; a second instance on the same database then
// delivers every event at least once, with one webhook-id per event across
// all attempts of both instances.
func TestWebhookRecovery(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			db := databaseFor(t, backend)
			dir := t.TempDir()
			env := []string{"APIKEY_DB=" + db}
			rcv := newHookReceiver(t)
			r := execute(t, dir, "", env, "webhook", "create", rcv.URL+"/hooks", "--event", "key.created", "--json")
			if r.code != 0 {
				t.Fatalf("webhook create: %d %s", r.code, r.stderr)
			}
			var ep struct{ Secret string }
			_ = json.Unmarshal([]byte(r.stdout), &ep)
			s, err := webhook.ParseSecret(ep.Secret)
			if err != nil {
				t.Fatal(err)
			}
			rcv.setSecret(s)
			r = execute(t, dir, "", env, "create", "--name", "admin", "--scope", "apikey:admin")
			if r.code != 0 {
				t.Fatalf("create: %d %s", r.code, r.stderr)
			}
			admin := strings.TrimSpace(r.stdout)
			flags := []string{"--webhook-backoff", "100ms", "--webhook-max-backoff", "400ms", "--webhook-attempts", "100",
				"--webhook-timeout", "1s", "--webhook-lease", "2s", "--schedule-interval", "0"}
			a := startServe(t, dir, env, flags...)
			const events = 31 // the admin key and 30 made through the API
			for i := range events - 1 {
				if res := call(t, "POST", a.url+"/v1/keys", "bearer", admin, `{"name":"k`+strings.Repeat("x", i%5)+`"}`); res.status != 201 {
					t.Fatalf("create key: %d %s", res.status, res.raw)
				}
			}
			// Down: every event is attempted, and refused.
			waitFor(t, "an attempt of every event", 30*time.Second, func() bool {
				rcv.mu.Lock()
				defer rcv.mu.Unlock()
				return len(rcv.ids) >= events
			})
			// Hang: the instance is in the middle of deliveries when it is killed.
			rcv.mode.Store("hang")
			waitFor(t, "requests in flight", 10*time.Second, func() bool { return rcv.hanging.Load() > 0 })
			if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-a.done
			close(rcv.release)
			rcv.mode.Store("up")
			b := startServe(t, dir, env, flags...)
			waitFor(t, "every event delivered", 60*time.Second, func() bool {
				_, n := rcv.counts()
				return n >= events
			})
			b.stop(t)
			rcv.mu.Lock()
			defer rcv.mu.Unlock()
			if len(rcv.ok) != events {
				t.Errorf("%d events delivered, want %d", len(rcv.ok), events)
			}
			for id, ids := range rcv.ids {
				if len(ids) != 1 {
					t.Errorf("event %d came with %d webhook-ids %v, want one", id, len(ids), ids)
				}
			}
			if len(rcv.bad) > 0 {
				t.Errorf("bad requests: %s", strings.Join(rcv.bad[:min(5, len(rcv.bad))], "; "))
			}
			t.Logf("%s: %d requests for %d events", backend, rcv.requests, events)
		})
	}
}

// TestSchedulerServe: two instances of the real binary on one database
// record key.expiring and key.expired once each, and the webhook worker
// delivers them.
func TestSchedulerServe(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			db := databaseFor(t, backend)
			dir := t.TempDir()
			env := []string{"APIKEY_DB=" + db}
			rcv := newHookReceiver(t)
			rcv.mode.Store("up")
			r := execute(t, dir, "", env, "webhook", "create", rcv.URL+"/hooks", "--event", "key.expiring,key.expired", "--json")
			var ep struct{ Secret string }
			if err := json.Unmarshal([]byte(r.stdout), &ep); err != nil {
				t.Fatalf("webhook create: %v %s", err, r.stderr)
			}
			s, _ := webhook.ParseSecret(ep.Secret)
			rcv.setSecret(s)
			for _, args := range [][]string{{"--name", "soon", "--expires", "2d"}, {"--name", "later", "--expires", "30d"}, {"--name", "brief", "--expires", "3s"}} {
				if r := execute(t, dir, "", env, append([]string{"create"}, args...)...); r.code != 0 {
					t.Fatalf("create: %s", r.stderr)
				}
			}
			flags := []string{"--schedule-interval", "200ms", "--expiry-warning", "7d", "--webhook-backoff", "100ms"}
			a := startServe(t, dir, env, flags...)
			b := startServe(t, dir, env, flags...)
			// soon and brief expiring, then brief expired.
			waitFor(t, "three deliveries", 30*time.Second, func() bool { _, n := rcv.counts(); return n >= 3 })
			time.Sleep(time.Second) // more ticks of both instances
			a.stop(t)
			b.stop(t)
			r = execute(t, dir, "", env, "events", "--json", "--limit", "100")
			if n := strings.Count(r.stdout, `"type": "key.expiring"`); n != 2 {
				t.Errorf("%d key.expiring entries, want 2:\n%s", n, r.stdout)
			}
			if n := strings.Count(r.stdout, `"type": "key.expired"`); n != 1 {
				t.Errorf("%d key.expired entries, want 1", n)
			}
			rcv.mu.Lock()
			defer rcv.mu.Unlock()
			if len(rcv.ok) != 3 || len(rcv.bad) > 0 {
				t.Errorf("%d events delivered (want 3), bad: %v", len(rcv.ok), rcv.bad)
			}
		})
	}
}
