package apikeytest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/outbox"
	"github.com/go-apikey/apikey/webhook"
)

// TestWorker runs outbox.Worker over a store against a real local HTTP
// receiver: signed messages with the key's snapshot, retries with the same
// webhook-id and body, failure after the last attempt, no redirect
// followed, the timeout. newStore is as for TestOutbox.
func TestWorker(t *testing.T, newStore func(t *testing.T) (Harness, outbox.Store)) {
	t.Helper()
	runOutboxCases(t, newStore, []outboxCase{
		{"Delivers", testWorkerDelivers},
		{"Retries", testWorkerRetries},
		{"GivesUp", testWorkerGivesUp},
	})
}

// receiver is a real HTTP server that records what it gets; answer
// decides the status of each request (200 when nil).
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []received
	answer func(n int) int
}

type received struct {
	header http.Header
	body   []byte
	at     time.Time
}

func newReceiver(t *testing.T, answer func(n int) int) *receiver {
	r := &receiver{answer: answer}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, received{req.Header.Clone(), body, time.Now()})
		n := len(r.got)
		answer := r.answer
		r.mu.Unlock()
		status := 200
		if answer != nil {
			status = answer(n)
		}
		if status == http.StatusFound {
			http.Redirect(w, req, "/elsewhere", status)
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// drain runs the worker until nothing is due (retries included) or the
// deadline passes.
func drain(t *testing.T, w *outbox.Worker, ws outbox.Store, endpoint string, until func([]*outbox.Delivery) bool) []*outbox.Delivery {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := w.RunOnce(t.Context()); err != nil {
			t.Fatalf("RunOnce: %v", err)
		}
		ds := deliveries(t, ws, endpoint)
		if until(ds) {
			return ds
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries still not done: %+v", ds)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func allIn(state outbox.State) func([]*outbox.Delivery) bool {
	return func(ds []*outbox.Delivery) bool {
		for _, d := range ds {
			if d.State != state {
				return false
			}
		}
		return len(ds) > 0
	}
}

func testWorkerDelivers(t *testing.T, h Harness, ws outbox.Store) {
	ctx := t.Context()
	rcv := newReceiver(t, nil)
	svc := &outbox.Service{Store: ws}
	ep := newEndpoint(t, svc, rcv.URL+"/hooks")
	m, err := apikey.NewManager(h.Store, apikey.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	k, _, err := m.Create(apikey.WithActor(ctx, "cli"), apikey.CreateParams{Name: "billing", Owner: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	w := &outbox.Worker{Store: ws, Key: m.Get}
	ds := drain(t, w, ws, ep.ID, allIn(outbox.StateDelivered))
	if len(ds) != 1 {
		t.Fatalf("%d deliveries, want 1", len(ds))
	}
	got := rcv.requests()
	if len(got) != 1 {
		t.Fatalf("the receiver got %d requests, want 1", len(got))
	}
	secret, _ := webhook.ParseSecret(ep.Secret)
	if err := webhook.Verify(got[0].header, got[0].body, time.Now(), 0, secret); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if id := got[0].header.Get("webhook-id"); id != ds[0].ID {
		t.Errorf("webhook-id %q, want the delivery's %q", id, ds[0].ID)
	}
	var p struct {
		Type      string          `json:"type"`
		Timestamp time.Time       `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(got[0].body, &p); err != nil {
		t.Fatalf("body %s: %v", got[0].body, err)
	}
	var data struct {
		KeyID string      `json:"key_id"`
		Owner string      `json:"owner"`
		Actor string      `json:"actor"`
		Key   *apikey.Key `json:"key"`
	}
	_ = json.Unmarshal(p.Data, &data)
	if p.Type != "key.created" || p.Timestamp.IsZero() || data.KeyID != k.ID || data.Owner != "acme" || data.Actor != "cli" || data.Key == nil || data.Key.Name != "billing" {
		t.Errorf("body %s", got[0].body)
	}
	if strings.Contains(string(got[0].body), "sha256$") || strings.Contains(string(got[0].body), "hash") {
		t.Errorf("the body holds a hash: %s", got[0].body)
	}
	d, err := ws.Delivery(ctx, ep.ID, ds[0].ID)
	if err != nil || len(d.Log) != 1 || d.Log[0].Status != 200 || d.DeliveredAt == nil || d.Attempts != 1 {
		t.Errorf("delivery %+v, %v", d, err)
	}
}

func testWorkerRetries(t *testing.T, h Harness, ws outbox.Store) {
	ctx := t.Context()
	// Down (503), then a redirect (not followed), then up.
	rcv := newReceiver(t, func(n int) int {
		switch {
		case n <= 2:
			return http.StatusServiceUnavailable
		case n == 3:
			return http.StatusFound
		}
		return http.StatusNoContent
	})
	svc := &outbox.Service{Store: ws}
	ep := newEndpoint(t, svc, rcv.URL+"/")
	id := testID("wrk", 1)
	if err := h.Store.Insert(ctx, record(id, "acme", "k", base), 0, keyEvent(apikey.EventCreated, id)); err != nil {
		t.Fatal(err)
	}
	w := &outbox.Worker{Store: ws, Backoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, MaxAttempts: 5}
	ds := drain(t, w, ws, ep.ID, allIn(outbox.StateDelivered))
	got := rcv.requests()
	if len(got) != 4 {
		t.Fatalf("the receiver got %d requests, want 4 (2 refused, 1 redirect, 1 accepted)", len(got))
	}
	for i, r := range got {
		if r.header.Get("webhook-id") != ds[0].ID || string(r.body) != string(got[0].body) {
			t.Errorf("attempt %d: webhook-id %q, body %s; want %q and the first body", i+1, r.header.Get("webhook-id"), r.body, ds[0].ID)
		}
	}
	d, _ := ws.Delivery(ctx, ep.ID, ds[0].ID)
	var statuses []int
	for _, a := range d.Log {
		statuses = append(statuses, a.Status)
	}
	if len(statuses) != 4 || statuses[0] != 503 || statuses[2] != 302 || statuses[3] != 204 || d.Attempts != 4 {
		t.Errorf("attempt statuses %v, attempts %d; want [503 503 302 204], 4", statuses, d.Attempts)
	}
	// Back-off: the second attempt waited at least half the first delay.
	if gap := got[1].at.Sub(got[0].at); gap < 5*time.Millisecond {
		t.Errorf("second attempt %s after the first, want at least 5ms", gap)
	}
}

func testWorkerGivesUp(t *testing.T, h Harness, ws outbox.Store) {
	ctx := t.Context()
	rcv := newReceiver(t, func(int) int { time.Sleep(300 * time.Millisecond); return 200 })
	svc := &outbox.Service{Store: ws}
	ep := newEndpoint(t, svc, rcv.URL+"/")
	id := testID("wrk", 2)
	if err := h.Store.Insert(ctx, record(id, "acme", "k", base), 0, keyEvent(apikey.EventCreated, id)); err != nil {
		t.Fatal(err)
	}
	w := &outbox.Worker{Store: ws, Backoff: 5 * time.Millisecond, MaxAttempts: 2, Timeout: 50 * time.Millisecond}
	ds := drain(t, w, ws, ep.ID, allIn(outbox.StateFailed))
	d, _ := ws.Delivery(ctx, ep.ID, ds[0].ID)
	if d.Attempts != 2 || len(d.Log) != 2 || d.LastError == "" || d.Log[0].Status != 0 || d.NextAttemptAt != nil {
		t.Errorf("failed delivery %+v", d)
	}
	// Resend queues it again with the same id; the receiver is fast now.
	rcv.mu.Lock()
	rcv.answer = nil
	rcv.mu.Unlock()
	if _, err := svc.Resend(ctx, ep.ID, d.ID); err != nil {
		t.Fatal(err)
	}
	ds = drain(t, w, ws, ep.ID, allIn(outbox.StateDelivered))
	last := rcv.requests()
	if ds[0].ID != d.ID || last[len(last)-1].header.Get("webhook-id") != d.ID {
		t.Errorf("resent with id %q, want %q", last[len(last)-1].header.Get("webhook-id"), d.ID)
	}
}
