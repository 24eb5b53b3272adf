package apikeyotel_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyotel"
	"github.com/go-apikey/apikey/apikeytest"
	"github.com/go-apikey/apikey/sqlite"
)

// setup returns a traced Manager over a fresh SQLite file, the raw store,
// and the exporter that receives every span as it ends.
type setup struct {
	m   *apikey.Manager
	v   apikey.Verifier
	raw *sqlite.Store
	exp *tracetest.InMemoryExporter
}

func newSetup(t *testing.T) *setup {
	t.Helper()
	ctx := context.Background()
	raw, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "apikey.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	if err := raw.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	// No cache, so that every Verify reaches the store; usage is flushed
	// by hand.
	m, err := apikey.NewManager(apikeyotel.NewStore(raw, tp), apikey.Config{UsageFlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return &setup{m: m, v: apikeyotel.NewVerifier(m, tp), raw: raw, exp: exp}
}

// attr returns the value of the attribute k of span, and whether it is set.
func attr(span tracetest.SpanStub, k attribute.Key) (string, bool) {
	for _, kv := range span.Attributes {
		if kv.Key == k {
			return kv.Value.Emit(), true
		}
	}
	return "", false
}

// named returns the spans called name, in the order they ended.
func named(spans tracetest.SpanStubs, name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// leaks reports the first attribute, event or status of spans that
// contains one of the strings in secrets.
func leaks(spans tracetest.SpanStubs, secrets ...string) string {
	for _, s := range spans {
		texts := []string{s.Name, s.Status.Description}
		for _, kv := range s.Attributes {
			texts = append(texts, string(kv.Key)+"="+kv.Value.Emit())
		}
		for _, ev := range s.Events {
			texts = append(texts, ev.Name)
			for _, kv := range ev.Attributes {
				texts = append(texts, string(kv.Key)+"="+kv.Value.Emit())
			}
		}
		for _, text := range texts {
			for _, secret := range secrets {
				if strings.Contains(text, secret) {
					return s.Name + ": " + text
				}
			}
		}
	}
	return ""
}

// TestVerify checks that a verification through NewVerifier over a
// Manager over NewStore is one apikey.verify span with the store lookup as
// its child, with the outcome of each case, and that no span holds the
// token, its secret or its digest.
func TestVerify(t *testing.T) {
	ctx := context.Background()
	s := newSetup(t)
	key, token, err := s.m.Create(ctx, apikey.CreateParams{Name: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := s.raw.Lookup(ctx, key.ID)
	if err != nil {
		t.Fatal(err)
	}
	wrong := apikeytest.WrongSecret(token)
	unknown := apikeytest.ForgeToken(key.Prefix, "AAAAAAAAAAAA", apikeytest.SecretOf(token))
	if key.ID == "AAAAAAAAAAAA" {
		t.Fatal("the test key has the unknown id")
	}

	verify := func(token string, want error) {
		t.Helper()
		_, err := s.v.Verify(ctx, token)
		if !errors.Is(err, want) && !(want == nil && err == nil) {
			t.Fatalf("Verify: got %v, want %v", err, want)
		}
	}
	verify(token, nil)
	verify(wrong, apikey.ErrInvalidKey)
	verify(unknown, apikey.ErrInvalidKey)
	verify("not a token", apikey.ErrInvalidKey)
	if _, err := s.m.Revoke(ctx, key.ID); err != nil {
		t.Fatal(err)
	}
	verify(token, apikey.ErrRevoked)

	spans := s.exp.GetSpans()
	verifies := named(spans, "apikey.verify")
	var got []string
	for _, v := range verifies {
		outcome, _ := attr(v, apikeyotel.OutcomeKey)
		id, _ := attr(v, apikeyotel.KeyID)
		got = append(got, outcome+" "+id)
		if v.Status.Code != codes.Unset {
			t.Errorf("%s verification: status %v, want unset", outcome, v.Status)
		}
	}
	want := []string{"valid " + key.ID, "invalid_key ", "invalid_key ", "invalid_key ", "key_revoked "}
	if !slices.Equal(got, want) {
		t.Errorf("verify spans (outcome id):\ngot  %q\nwant %q", got, want)
	}

	// Every store lookup of a verification is a child of its verify span.
	lookups := named(spans, "apikey.store.lookup")
	var parents []int
	for _, l := range lookups {
		i := slices.IndexFunc(verifies, func(v tracetest.SpanStub) bool {
			return v.SpanContext.SpanID() == l.Parent.SpanID() && v.SpanContext.TraceID() == l.SpanContext.TraceID()
		})
		parents = append(parents, i)
	}
	// The malformed token never reaches the store.
	if want := []int{0, 1, 2, 4}; !slices.Equal(parents, want) {
		t.Errorf("lookup spans are children of verify spans %v, want %v", parents, want)
	}
	for i, l := range lookups {
		id, _ := attr(l, apikeyotel.KeyID)
		result, _ := attr(l, "apikey.store.result")
		if l.Status.Code != codes.Unset || len(l.Events) != 0 {
			t.Errorf("lookup %d: status %v, events %v", i, l.Status, l.Events)
		}
		if i == 2 {
			if id != "AAAAAAAAAAAA" || result != "not_found" {
				t.Errorf("unknown id lookup: key id %q, result %q", id, result)
			}
		} else if id != key.ID || result != "" {
			t.Errorf("lookup %d: key id %q, result %q", i, id, result)
		}
	}

	if l := leaks(spans, token, apikeytest.SecretOf(token), wrong, apikeytest.SecretOf(wrong), rec.Hash); l != "" {
		t.Errorf("a span holds a secret: %s", l)
	}
}

// TestStoreSpans checks that every Store method has its span, with the key
// id where there is one, and that only store failures are errors.
func TestStoreSpans(t *testing.T) {
	ctx := context.Background()
	s := newSetup(t)
	key, token, err := s.m.Create(ctx, apikey.CreateParams{Name: "demo", Owner: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.m.Verify(ctx, token); err != nil {
		t.Fatal(err)
	}
	name := "renamed"
	if _, err := s.m.Update(ctx, key.ID, apikey.KeyUpdate{Name: &name}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.m.List(ctx, apikey.KeyFilter{Owner: "acme"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.m.Events(ctx, apikey.EventFilter{KeyID: key.ID}); err != nil {
		t.Fatal(err)
	}
	_, rolled, err := s.m.Roll(ctx, key.ID, apikey.RollOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.m.FlushUsage(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := s.m.Usage(ctx, key.ID, now.Add(-time.Hour), now.Add(time.Minute), apikey.ByMinute); err != nil {
		t.Fatal(err)
	}
	if _, err := s.m.Revoke(ctx, key.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.m.Update(ctx, key.ID, apikey.KeyUpdate{Name: &name}); !errors.Is(err, apikey.ErrFrozen) {
		t.Fatalf("Update of a revoked key: %v", err)
	}
	if err := s.m.Delete(ctx, key.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.m.Delete(ctx, key.ID); !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("second Delete: %v", err)
	}

	spans := s.exp.GetSpans()
	var got []string
	for _, span := range spans {
		line := span.Name
		if id, ok := attr(span, apikeyotel.KeyID); ok {
			if id != key.ID {
				t.Errorf("%s: key id %q, want %q", span.Name, id, key.ID)
			}
			line += " id"
		}
		if r, ok := attr(span, "apikey.store.result"); ok {
			line += " " + r
		}
		if span.Status.Code != codes.Unset {
			t.Errorf("%s: status %v, want unset", span.Name, span.Status)
		}
		got = append(got, line)
	}
	want := []string{
		"apikey.store.insert id",
		"apikey.store.lookup id",
		"apikey.store.update id",
		"apikey.store.list",
		"apikey.store.list_events id",
		"apikey.store.lookup id", // Roll reads the key first
		"apikey.store.roll id",
		"apikey.store.record_usage",
		"apikey.store.usage id",
		"apikey.store.revoke id",
		"apikey.store.update id revoked",
		"apikey.store.delete id",
		"apikey.store.delete id not_found",
	}
	if !slices.Equal(got, want) {
		t.Errorf("spans:\ngot  %q\nwant %q", got, want)
	}
	if l := leaks(spans, token, apikeytest.SecretOf(token), rolled, apikeytest.SecretOf(rolled), "sha256$"); l != "" {
		t.Errorf("a span holds a secret: %s", l)
	}
}

// TestStoreFailure checks that a failing store marks the store span as an
// error with the error recorded, and the verify span as unavailable.
func TestStoreFailure(t *testing.T) {
	ctx := context.Background()
	s := newSetup(t)
	_, token, err := s.m.Create(ctx, apikey.CreateParams{Name: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	s.raw.Close()
	if _, err := s.v.Verify(ctx, token); !errors.Is(err, apikey.ErrUnavailable) {
		t.Fatalf("Verify over a closed store: %v", err)
	}
	spans := s.exp.GetSpans()
	lookup := named(spans, "apikey.store.lookup")
	verify := named(spans, "apikey.verify")
	if len(lookup) != 1 || len(verify) != 1 {
		t.Fatalf("spans %v", spans)
	}
	if lookup[0].Status.Code != codes.Error || len(lookup[0].Events) != 1 || lookup[0].Events[0].Name != "exception" {
		t.Errorf("failed lookup: status %v, events %v", lookup[0].Status, lookup[0].Events)
	}
	if outcome, _ := attr(verify[0], apikeyotel.OutcomeKey); outcome != "unavailable" || verify[0].Status.Code != codes.Error {
		t.Errorf("verify: outcome %q, status %v", outcome, verify[0].Status)
	}
	if l := leaks(spans, token, apikeytest.SecretOf(token)); l != "" {
		t.Errorf("a span holds a secret: %s", l)
	}
}

// TestNilProvider checks that a nil provider falls back to the global one
// (a no-op by default), so wrapping never fails.
func TestNilProvider(t *testing.T) {
	ctx := context.Background()
	raw, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "apikey.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := raw.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	m, err := apikey.NewManager(apikeyotel.NewStore(raw, nil), apikey.Config{UsageFlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	_, token, err := m.Create(ctx, apikey.CreateParams{Name: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := apikeyotel.NewVerifier(m, nil).Verify(ctx, token); err != nil {
		t.Fatal(err)
	}
}

// TestLeakStoreSpans checks that NewStore keeps the leak methods of a
// store that has them, traced, and does not claim them for one that has
// not.
func TestLeakStoreSpans(t *testing.T) {
	ctx := context.Background()
	s := newSetup(t)
	key, token, err := s.m.Create(ctx, apikey.CreateParams{Name: "leaky"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.m.ReportLeak(ctx, apikey.LeakReport{Token: token, URL: "https://example.com/x"}, apikey.LeakPolicy{Default: apikey.LeakNotify}); err != nil {
		t.Fatalf("ReportLeak through a traced store: %v", err)
	}
	if _, err := s.m.ReportLeak(ctx, apikey.LeakReport{Token: token, URL: "https://example.com/x"}, apikey.LeakPolicy{Default: apikey.LeakNotify}); err != nil {
		t.Fatalf("repeated report: %v", err)
	}
	if p, err := s.m.Leaks(ctx, apikey.LeakFilter{KeyID: key.ID}); err != nil || len(p.Leaks) != 1 {
		t.Fatalf("Leaks: %+v, %v", p, err)
	}
	spans := s.exp.GetSpans()
	var got []string
	for _, span := range spans[1:] { // after the insert
		line := span.Name
		if id, ok := attr(span, apikeyotel.KeyID); ok && id == key.ID {
			line += " id"
		}
		if r, ok := attr(span, "apikey.store.result"); ok {
			line += " " + r
		}
		got = append(got, line)
	}
	want := []string{
		"apikey.store.lookup id", "apikey.store.record_leak id",
		"apikey.store.lookup id", "apikey.store.record_leak id duplicate_id",
		"apikey.store.list_leaks id",
	}
	if !slices.Equal(got, want) {
		t.Errorf("spans:\ngot  %q\nwant %q", got, want)
	}
	if l := leaks(spans, token, apikeytest.SecretOf(token)); l != "" {
		t.Errorf("a span holds a secret: %s", l)
	}

	// A store without leak methods stays without them.
	plain := apikeyotel.NewStore(struct{ apikey.Store }{s.raw}, nil)
	if _, ok := plain.(apikey.LeakStore); ok {
		t.Error("NewStore of a store without leaks claims to be an apikey.LeakStore")
	}
	m, err := apikey.NewManager(plain, apikey.Config{UsageFlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	if _, err := m.Leaks(ctx, apikey.LeakFilter{}); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Leaks over a store without leaks: %v, want errors.ErrUnsupported", err)
	}
}
