package apikeytest

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/outbox"
)

// TestOutbox runs the conformance suite of outbox.Store: endpoints and
// their audit entries, deliveries queued in the transaction of every
// audited event (and of nothing rolled back), claims that never hand one
// delivery to two workers, leases that end, attempts, resends. newStore
// returns a harness over a fresh database and the outbox.Store of the same
// database.
func TestOutbox(t *testing.T, newStore func(t *testing.T) (Harness, outbox.Store)) {
	t.Helper()
	runOutboxCases(t, newStore, []outboxCase{
		{"Endpoints", testOutboxEndpoints},
		{"Queue", testOutboxQueue},
		{"ClaimFinish", testOutboxClaimFinish},
		{"ConcurrentClaims", testOutboxConcurrentClaims},
		{"Resend", testOutboxResend},
		{"DeleteEndpoint", testOutboxDelete},
	})
}

// outboxCase is one test of a suite over an outbox.Store.
type outboxCase struct {
	name string
	run  func(*testing.T, Harness, outbox.Store)
}

// runOutboxCases runs each case as a subtest on a fresh store of newStore.
func runOutboxCases(t *testing.T, newStore func(t *testing.T) (Harness, outbox.Store), cases []outboxCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, ws := newStore(t)
			tc.run(t, h, ws)
		})
	}
}

func newEndpoint(t *testing.T, svc *outbox.Service, url string, events ...apikey.EventType) *outbox.Endpoint {
	t.Helper()
	ep, secret, err := svc.Create(t.Context(), outbox.NewEndpoint{URL: url, Events: events})
	if err != nil {
		t.Fatalf("Create(%s): %v", url, err)
	}
	if !strings.HasPrefix(secret, "whsec_") || ep.Secret != secret {
		t.Fatalf("Create: secret %q (stored %q), want whsec_...", secret, ep.Secret)
	}
	return ep
}

func testOutboxEndpoints(t *testing.T, h Harness, ws outbox.Store) {
	ctx := apikey.WithActor(t.Context(), "admin:alice")
	svc := &outbox.Service{Store: ws}
	ep, _, err := svc.Create(ctx, outbox.NewEndpoint{URL: "https://example.com/hooks", Events: []apikey.EventType{apikey.EventCreated, apikey.EventCreated}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := svc.Get(ctx, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.URL != ep.URL || len(got.Events) != 1 || got.Events[0] != apikey.EventCreated || !got.Enabled || got.Secret != ep.Secret || !got.CreatedAt.Equal(ep.CreatedAt) {
		t.Errorf("Get = %+v, want %+v", got, ep)
	}
	off := false
	all := []apikey.EventType{"*"}
	upd, err := svc.Update(ctx, ep.ID, outbox.EndpointUpdate{Enabled: &off, Events: &all})
	if err != nil || upd.Enabled || len(upd.Events) != 0 {
		t.Fatalf("Update = %+v, %v; want disabled, all events", upd, err)
	}
	_, secret, err := svc.Rotate(ctx, ep.ID)
	if err != nil || secret == ep.Secret {
		t.Fatalf("Rotate = %q, %v", secret, err)
	}
	if list, err := svc.List(ctx); err != nil || len(list) != 1 || list[0].Secret != secret {
		t.Errorf("List = %v, %v; want the endpoint with the new secret", list, err)
	}
	for _, bad := range []struct {
		p     outbox.NewEndpoint
		field string
	}{
		{outbox.NewEndpoint{URL: "ftp://example.com"}, "url"},
		{outbox.NewEndpoint{URL: "https://"}, "url"},
		{outbox.NewEndpoint{URL: "https://example.com", Events: []apikey.EventType{"key.bogus"}}, "events"},
		{outbox.NewEndpoint{URL: "https://example.com", Events: []apikey.EventType{apikey.EventWebhookCreated}}, "events"},
	} {
		var ve *apikey.ValidationError
		if _, _, err := svc.Create(ctx, bad.p); !errors.As(err, &ve) || ve.Field != bad.field {
			t.Errorf("Create(%+v) = %v, want a ValidationError for %s", bad.p, err, bad.field)
		}
	}
	if _, err := svc.Get(ctx, "wh_AAAAAAAAAAAAAAAAAAAAAA"); !errors.Is(err, apikey.ErrWebhookNotFound) {
		t.Errorf("Get(unknown) = %v, want ErrWebhookNotFound", err)
	}
	if err := svc.Delete(ctx, ep.ID); err != nil {
		t.Fatal(err)
	}
	if err := svc.Delete(ctx, ep.ID); !errors.Is(err, apikey.ErrWebhookNotFound) {
		t.Errorf("second Delete = %v, want ErrWebhookNotFound", err)
	}
	evs, err := h.Store.ListEvents(ctx, apikey.EventQuery{KeyID: apikey.WebhookSubject(ep.ID), Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range evs {
		types = append(types, string(e.Type))
		if e.Actor != "admin:alice" {
			t.Errorf("%s: actor %q, want admin:alice", e.Type, e.Actor)
		}
		for name, c := range e.Changes {
			if s, ok := c.After.(string); ok && strings.HasPrefix(s, "whsec_") || name == "secret" && c.After != "rotated" {
				t.Errorf("%s: change %s = %+v shows a secret", e.Type, name, c)
			}
		}
	}
	if want := "webhook.deleted webhook.updated webhook.updated webhook.created"; strings.Join(types, " ") != want {
		t.Errorf("audit entries %v, want %s", types, want)
	}
	// Entries about endpoints are never delivered.
	if ds, _ := ws.Deliveries(ctx, outbox.DeliveryQuery{EndpointID: ep.ID, Limit: 10}); len(ds) != 0 {
		t.Errorf("%d deliveries of webhook.* entries", len(ds))
	}
}

func keyEvent(typ apikey.EventType, id string) *apikey.Event {
	return &apikey.Event{Type: typ, At: us(base), Actor: "test", KeyID: id}
}

func deliveries(t *testing.T, ws outbox.Store, ep string) []*outbox.Delivery {
	t.Helper()
	ds, err := ws.Deliveries(t.Context(), outbox.DeliveryQuery{EndpointID: ep, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func testOutboxQueue(t *testing.T, h Harness, ws outbox.Store) {
	ctx := t.Context()
	svc := &outbox.Service{Store: ws}
	all := newEndpoint(t, svc, "https://a.example/")
	created := newEndpoint(t, svc, "https://b.example/", apikey.EventCreated)
	off := newEndpoint(t, svc, "https://c.example/")
	no := false
	if _, err := svc.Update(ctx, off.ID, outbox.EndpointUpdate{Enabled: &no}); err != nil {
		t.Fatal(err)
	}
	id := testID("obx", 1)
	if err := h.Store.Insert(ctx, record(id, "acme", "k", base), 0, keyEvent(apikey.EventCreated, id)); err != nil {
		t.Fatal(err)
	}
	name := "renamed"
	if _, err := h.Store.Update(ctx, id, apikey.KeyUpdate{Name: &name}, keyEvent(apikey.EventUpdated, id)); err != nil {
		t.Fatal(err)
	}
	// A change that fails queues nothing.
	if err := h.Store.Insert(ctx, record(id, "acme", "k", base), 0, keyEvent(apikey.EventCreated, id)); err == nil {
		t.Fatal("second Insert of one id succeeded")
	}
	if _, err := h.Store.Revoke(ctx, id, us(base), keyEvent(apikey.EventRevoked, id)); err != nil {
		t.Fatal(err)
	}
	check := func(ep *outbox.Endpoint, want ...apikey.EventType) {
		t.Helper()
		ds := deliveries(t, ws, ep.ID)
		var got []apikey.EventType
		for _, d := range ds {
			got = append(got, d.Type)
			if d.State != outbox.StatePending || d.Attempts != 0 || !strings.HasPrefix(d.ID, "msg_") || d.EndpointID != ep.ID || d.NextAttemptAt == nil {
				t.Errorf("delivery %+v, want pending, no attempt, msg_ id", d)
			}
		}
		if len(got) != len(want) {
			t.Errorf("endpoint %s: deliveries %v, want %v (newest first)", ep.URL, got, want)
			return
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("endpoint %s: deliveries %v, want %v (newest first)", ep.URL, got, want)
				return
			}
		}
	}
	check(all, apikey.EventRevoked, apikey.EventUpdated, apikey.EventCreated)
	check(created, apikey.EventCreated)
	check(off)
}

func testOutboxClaimFinish(t *testing.T, h Harness, ws outbox.Store) {
	ctx := t.Context()
	svc := &outbox.Service{Store: ws}
	ep := newEndpoint(t, svc, "https://a.example/")
	id := testID("obx", 2)
	if err := h.Store.Insert(ctx, record(id, "acme", "k", base), 0, keyEvent(apikey.EventCreated, id)); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Add(time.Minute)
	jobs, err := ws.Claim(ctx, "w1", now, time.Minute, 10)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("Claim = %d jobs, %v; want 1", len(jobs), err)
	}
	j := jobs[0]
	if j.URL != ep.URL || j.Secret != ep.Secret || j.Event.Type != apikey.EventCreated || j.Event.KeyID != id || j.Event.Owner != "acme" ||
		j.Event.Actor != "test" || !j.Event.At.Equal(us(base)) || j.Attempts != 1 || j.Payload != nil || j.Event.ID == 0 {
		t.Errorf("job %+v", j)
	}
	if again, err := ws.Claim(ctx, "w2", now, time.Minute, 10); err != nil || len(again) != 0 {
		t.Errorf("Claim during the lease = %d jobs, %v; want none", len(again), err)
	}
	// The lease ends (w1 died): w2 takes it, same webhook-id.
	later, err := ws.Claim(ctx, "w2", now.Add(2*time.Minute), time.Minute, 10)
	if err != nil || len(later) != 1 || later[0].ID != j.ID || later[0].Attempts != 2 {
		t.Fatalf("Claim after the lease = %+v, %v; want the same delivery, attempt 2", later, err)
	}
	// w1's late result does not move the delivery it no longer leases,
	// but its attempt is logged.
	res := outbox.Result{Seq: j.Seq, State: outbox.StateDelivered, Attempt: outbox.Attempt{N: 1, At: now, Status: 200}, Payload: []byte(`{"a":1}`)}
	if err := ws.Finish(ctx, "w1", []outbox.Result{res}); err != nil {
		t.Fatal(err)
	}
	d, err := ws.Delivery(ctx, ep.ID, j.ID)
	if err != nil || d.State != outbox.StatePending || len(d.Log) != 1 {
		t.Fatalf("after a stale Finish: %+v, %v; want pending, 1 attempt logged", d, err)
	}
	// w2 fails: retry later with the same payload.
	retry := now.Add(5 * time.Minute)
	res = outbox.Result{Seq: j.Seq, State: outbox.StatePending, NextAt: retry, Attempt: outbox.Attempt{N: 2, At: now, Status: 503, Error: "the endpoint answered 503", Duration: 1500 * time.Microsecond}, Payload: []byte(`{"b":2}`)}
	if err := ws.Finish(ctx, "w2", []outbox.Result{res}); err != nil {
		t.Fatal(err)
	}
	d, err = ws.Delivery(ctx, ep.ID, j.ID)
	if err != nil || d.State != outbox.StatePending || d.LastStatus != 503 || d.LastError == "" || d.NextAttemptAt == nil || !d.NextAttemptAt.Equal(us(retry)) || len(d.Log) != 2 || d.Log[1].Duration != 1500*time.Microsecond {
		t.Fatalf("after a failed attempt: %+v, %v", d, err)
	}
	if early, _ := ws.Claim(ctx, "w3", retry.Add(-time.Second), time.Minute, 10); len(early) != 0 {
		t.Errorf("claimed before its retry time")
	}
	jobs, err = ws.Claim(ctx, "w3", retry, time.Minute, 10)
	if err != nil || len(jobs) != 1 || string(jobs[0].Payload) != `{"b":2}` || jobs[0].Attempts != 3 {
		t.Fatalf("Claim at the retry = %+v, %v; want the stored payload, attempt 3", jobs, err)
	}
	res = outbox.Result{Seq: j.Seq, State: outbox.StateDelivered, Attempt: outbox.Attempt{N: 3, At: retry, Status: 204}}
	if err := ws.Finish(ctx, "w3", []outbox.Result{res}); err != nil {
		t.Fatal(err)
	}
	d, _ = ws.Delivery(ctx, ep.ID, j.ID)
	if d.State != outbox.StateDelivered || d.DeliveredAt == nil || d.NextAttemptAt != nil || d.LastStatus != 204 || d.LastError != "" {
		t.Errorf("after delivery: %+v", d)
	}
	if more, _ := ws.Claim(ctx, "w4", retry.Add(time.Hour), time.Minute, 10); len(more) != 0 {
		t.Errorf("a delivered delivery was claimed again")
	}
	// A disabled endpoint's pending deliveries wait.
	if err := h.Store.Delete(ctx, id, keyEvent(apikey.EventDeleted, id)); err != nil {
		t.Fatal(err)
	}
	no := false
	if _, err := svc.Update(ctx, ep.ID, outbox.EndpointUpdate{Enabled: &no}); err != nil {
		t.Fatal(err)
	}
	if got, _ := ws.Claim(ctx, "w4", retry.Add(time.Hour), time.Minute, 10); len(got) != 0 {
		t.Errorf("claimed %d deliveries of a disabled endpoint", len(got))
	}
	yes := true
	if _, err := svc.Update(ctx, ep.ID, outbox.EndpointUpdate{Enabled: &yes}); err != nil {
		t.Fatal(err)
	}
	if got, _ := ws.Claim(ctx, "w4", retry.Add(time.Hour), time.Minute, 10); len(got) != 1 || got[0].Type != apikey.EventDeleted {
		t.Errorf("after enabling: %d deliveries, want the key.deleted one", len(got))
	}
}

func testOutboxConcurrentClaims(t *testing.T, h Harness, ws outbox.Store) {
	ctx := t.Context()
	svc := &outbox.Service{Store: ws}
	newEndpoint(t, svc, "https://a.example/")
	const n = 60
	for i := range n {
		id := testID("obc", i)
		if err := h.Store.Insert(ctx, record(id, "acme", "k", base), 0, keyEvent(apikey.EventCreated, id)); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC().Add(time.Minute)
	var (
		mu   sync.Mutex
		seen = map[string]int{}
		wg   sync.WaitGroup
	)
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				jobs, err := ws.Claim(ctx, "w"+string(rune('a'+w)), now, time.Minute, 7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(jobs) == 0 {
					return
				}
				mu.Lock()
				for _, j := range jobs {
					seen[j.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Errorf("%d deliveries claimed, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("delivery %s claimed %d times", id, c)
		}
	}
}

func testOutboxResend(t *testing.T, h Harness, ws outbox.Store) {
	ctx := t.Context()
	svc := &outbox.Service{Store: ws}
	ep := newEndpoint(t, svc, "https://a.example/")
	id := testID("obx", 3)
	if err := h.Store.Insert(ctx, record(id, "acme", "k", base), 0, keyEvent(apikey.EventCreated, id)); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Add(time.Minute)
	jobs, err := ws.Claim(ctx, "w", now, time.Minute, 1)
	if err != nil || len(jobs) != 1 {
		t.Fatal(len(jobs), err)
	}
	res := outbox.Result{Seq: jobs[0].Seq, State: outbox.StateFailed, Attempt: outbox.Attempt{N: 1, At: now, Error: "connection refused"}}
	if err := ws.Finish(ctx, "w", []outbox.Result{res}); err != nil {
		t.Fatal(err)
	}
	page, err := svc.Deliveries(ctx, ep.ID, outbox.DeliveryFilter{State: outbox.StateFailed})
	if err != nil || len(page.Deliveries) != 1 {
		t.Fatalf("failed deliveries: %+v, %v", page, err)
	}
	d, err := svc.Resend(ctx, ep.ID, jobs[0].ID)
	if err != nil || d.State != outbox.StatePending || d.Attempts != 0 || d.ID != jobs[0].ID || len(d.Log) != 1 {
		t.Fatalf("Resend = %+v, %v; want pending, 0 attempts, same id, the old attempt kept", d, err)
	}
	again, err := ws.Claim(ctx, "w", time.Now().UTC().Add(time.Minute), time.Minute, 1)
	if err != nil || len(again) != 1 || again[0].ID != jobs[0].ID {
		t.Errorf("Claim after Resend = %+v, %v", again, err)
	}
	// Resent while w sends it: the lease ends, another worker may take
	// it at once, and w's late outcome is logged but changes nothing.
	if _, err := svc.Resend(ctx, ep.ID, jobs[0].ID); err != nil {
		t.Fatal(err)
	}
	taken, err := ws.Claim(ctx, "w2", time.Now().UTC().Add(time.Minute), time.Minute, 1)
	if err != nil || len(taken) != 1 || taken[0].ID != jobs[0].ID || taken[0].Attempts != 1 {
		t.Fatalf("Claim of a delivery resent during its lease = %+v, %v", taken, err)
	}
	late := outbox.Result{Seq: jobs[0].Seq, State: outbox.StateDelivered, Attempt: outbox.Attempt{N: 1, At: now, Status: 200}}
	if err := ws.Finish(ctx, "w", []outbox.Result{late}); err != nil {
		t.Fatal(err)
	}
	if d, _ := ws.Delivery(ctx, ep.ID, jobs[0].ID); d.State != outbox.StatePending || len(d.Log) != 2 {
		t.Errorf("after a late Finish: %+v; want pending, 2 attempts logged", d)
	}
	if _, err := svc.Resend(ctx, ep.ID, "msg_00000000000000000000000000000000"); !errors.Is(err, apikey.ErrDeliveryNotFound) {
		t.Errorf("Resend(unknown) = %v, want ErrDeliveryNotFound", err)
	}
	if _, err := svc.Resend(ctx, ep.ID, "nope"); !errors.Is(err, apikey.ErrDeliveryNotFound) {
		t.Errorf("Resend(malformed) = %v, want ErrDeliveryNotFound", err)
	}
	if _, err := svc.Resend(ctx, "wh_AAAAAAAAAAAAAAAAAAAAAA", jobs[0].ID); !errors.Is(err, apikey.ErrWebhookNotFound) {
		t.Errorf("Resend(unknown endpoint) = %v, want ErrWebhookNotFound", err)
	}
}

func testOutboxDelete(t *testing.T, h Harness, ws outbox.Store) {
	ctx := t.Context()
	svc := &outbox.Service{Store: ws}
	ep := newEndpoint(t, svc, "https://a.example/")
	keep := newEndpoint(t, svc, "https://b.example/")
	for i := range 5 {
		id := testID("obd", i)
		if err := h.Store.Insert(ctx, record(id, "acme", "k", base), 0, keyEvent(apikey.EventCreated, id)); err != nil {
			t.Fatal(err)
		}
	}
	// Paging.
	page, err := svc.Deliveries(ctx, ep.ID, outbox.DeliveryFilter{Limit: 2})
	if err != nil || len(page.Deliveries) != 2 || page.NextCursor == "" {
		t.Fatalf("page 1: %+v, %v", page, err)
	}
	var ids []string
	for page != nil {
		for _, d := range page.Deliveries {
			ids = append(ids, d.ID)
		}
		if page.NextCursor == "" {
			break
		}
		if page, err = svc.Deliveries(ctx, ep.ID, outbox.DeliveryFilter{Limit: 2, Cursor: page.NextCursor}); err != nil {
			t.Fatal(err)
		}
	}
	if len(ids) != 5 {
		t.Errorf("paged through %d deliveries, want 5", len(ids))
	}
	if _, err := svc.Deliveries(ctx, ep.ID, outbox.DeliveryFilter{Cursor: "!!"}); err == nil {
		t.Error("a bad cursor was accepted")
	}
	if err := svc.Delete(ctx, ep.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Deliveries(ctx, ep.ID, outbox.DeliveryFilter{}); !errors.Is(err, apikey.ErrWebhookNotFound) {
		t.Errorf("Deliveries of a deleted endpoint = %v", err)
	}
	if got := deliveries(t, ws, keep.ID); len(got) != 5 {
		t.Errorf("the other endpoint has %d deliveries, want 5", len(got))
	}
	jobs, err := ws.Claim(ctx, "w", time.Now().UTC().Add(time.Minute), time.Minute, 100)
	if err != nil || len(jobs) != 5 {
		t.Errorf("Claim after the delete = %d, %v; want the other endpoint's 5", len(jobs), err)
	}
}
