// Package apikeyotel traces key verification and store calls with
// OpenTelemetry. It depends on the OpenTelemetry API only: the program
// chooses the SDK and the exporter and passes a trace.TracerProvider.
//
// NewVerifier wraps a Verifier (usually the Manager) in a span named
// "apikey.verify" with these attributes:
//
//	apikey.outcome   valid, invalid_key, key_expired, key_revoked or unavailable (apikey.CodeOf)
//	apikey.key_id    the id of the verified key, on success only
//
// NewStore wraps every method of a Store in a span named after it
// ("apikey.store.lookup", "apikey.store.insert", ...), with the key id as
// apikey.key_id where the method has one. Wire both, the store below the
// Manager and the verifier above it, so that the store spans of a
// verification are children of its apikey.verify span:
//
//	store := apikeyotel.NewStore(sqliteStore, tp)
//	m, err := apikey.NewManager(store, apikey.Config{})
//	...
//	v := apikeyotel.NewVerifier(m, tp) // give v to the HTTP middleware
//
// No span carries a token, a secret or a stored digest.
package apikeyotel

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/go-apikey/apikey"
)

// ScopeName is the instrumentation scope of the tracer this package uses.
const ScopeName = "github.com/go-apikey/apikey/apikeyotel"

// Attribute keys set on the spans.
const (
	// KeyID is the id of the key a call is about (never its secret).
	KeyID = attribute.Key("apikey.key_id")
	// OutcomeKey is the result of a verification, as apikey.CodeOf names it.
	OutcomeKey = attribute.Key("apikey.outcome")
)

func tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return tp.Tracer(ScopeName)
}

// NewVerifier returns a Verifier that calls v.Verify inside a span named
// "apikey.verify", started from the span in ctx if there is one. The span
// records the outcome and, on success, the key id; it is marked as an
// error only when the outcome is "unavailable", and never holds the token
// or the error text (which could quote it). A nil tp means
// otel.GetTracerProvider(). The result is safe for concurrent use if v is.
func NewVerifier(v apikey.Verifier, tp trace.TracerProvider) apikey.Verifier {
	return &verifier{next: v, tracer: tracer(tp)}
}

type verifier struct {
	next   apikey.Verifier
	tracer trace.Tracer
}

var _ apikey.Verifier = (*verifier)(nil)

func (v *verifier) Verify(ctx context.Context, token string) (*apikey.Key, error) {
	ctx, span := v.tracer.Start(ctx, "apikey.verify")
	defer span.End()
	k, err := v.next.Verify(ctx, token)
	outcome := apikey.CodeOf(err)
	span.SetAttributes(OutcomeKey.String(string(outcome)))
	if err == nil && k != nil {
		span.SetAttributes(KeyID.String(k.ID))
	}
	if outcome == apikey.CodeUnavailable {
		span.SetStatus(codes.Error, string(outcome))
	}
	return k, err
}

// NewStore returns a Store that calls s inside one span per method, named
// "apikey.store." and the method in lower case ("apikey.store.lookup",
// "apikey.store.set_hash", "apikey.store.list_events", ...). Store
// failures are recorded on the span as errors; the answers the Store
// contract allows (ErrNotFound, ErrFrozen, ErrTooManyKeys,
// ErrDuplicateID) are not, and are noted in the attribute
// apikey.store.result instead. A nil tp means otel.GetTracerProvider().
//
// The result has the methods of apikey.Store only, and those of
// apikey.LeakStore when s is one (traced as "apikey.store.record_leak" and
// "apikey.store.list_leaks"): keep s for anything else it offers (Ping,
// Close, migrations). It is safe for concurrent use if s is.
func NewStore(s apikey.Store, tp trace.TracerProvider) apikey.Store {
	st := &store{next: s, tracer: tracer(tp)}
	if ls, ok := s.(apikey.LeakStore); ok {
		return &leakStore{store: st, next: ls}
	}
	return st
}

type store struct {
	next   apikey.Store
	tracer trace.Tracer
}

var (
	_ apikey.Store     = (*store)(nil)
	_ apikey.LeakStore = (*leakStore)(nil)
)

// leakStore traces a LeakStore.
type leakStore struct {
	*store
	next apikey.LeakStore
}

// resultKey names the contract answer a store call gave, such as
// "not_found".
const resultKey = attribute.Key("apikey.store.result")

func (s *store) start(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return s.tracer.Start(ctx, "apikey.store."+name, trace.WithAttributes(attrs...))
}

// end records err on span and ends it.
func end(span trace.Span, err error) {
	defer span.End()
	if err == nil {
		return
	}
	switch {
	case errors.Is(err, apikey.ErrNotFound):
		span.SetAttributes(resultKey.String("not_found"))
	case errors.Is(err, apikey.ErrFrozen):
		span.SetAttributes(resultKey.String("revoked"))
	case errors.Is(err, apikey.ErrTooManyKeys):
		span.SetAttributes(resultKey.String("too_many_keys"))
	case errors.Is(err, apikey.ErrDuplicateID):
		span.SetAttributes(resultKey.String("duplicate_id"))
	default:
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
}

func (s *store) Insert(ctx context.Context, rec *apikey.Record, limit int, ev *apikey.Event) (err error) {
	ctx, span := s.start(ctx, "insert", KeyID.String(rec.ID))
	defer func() { end(span, err) }()
	return s.next.Insert(ctx, rec, limit, ev)
}

func (s *store) Lookup(ctx context.Context, id string) (_ *apikey.Record, err error) {
	ctx, span := s.start(ctx, "lookup", KeyID.String(id))
	defer func() { end(span, err) }()
	return s.next.Lookup(ctx, id)
}

func (s *store) List(ctx context.Context, q apikey.Query) (keys []*apikey.Key, err error) {
	ctx, span := s.start(ctx, "list", attribute.Int("apikey.query.limit", q.Limit))
	defer func() {
		span.SetAttributes(attribute.Int("apikey.store.rows", len(keys)))
		end(span, err)
	}()
	return s.next.List(ctx, q)
}

func (s *store) Update(ctx context.Context, id string, u apikey.KeyUpdate, ev *apikey.Event) (_ *apikey.Key, err error) {
	ctx, span := s.start(ctx, "update", KeyID.String(id))
	defer func() { end(span, err) }()
	return s.next.Update(ctx, id, u, ev)
}

func (s *store) Revoke(ctx context.Context, id string, at time.Time, ev *apikey.Event) (_ *apikey.Key, err error) {
	ctx, span := s.start(ctx, "revoke", KeyID.String(id))
	defer func() { end(span, err) }()
	return s.next.Revoke(ctx, id, at, ev)
}

func (s *store) Delete(ctx context.Context, id string, ev *apikey.Event) (err error) {
	ctx, span := s.start(ctx, "delete", KeyID.String(id))
	defer func() { end(span, err) }()
	return s.next.Delete(ctx, id, ev)
}

func (s *store) SetHash(ctx context.Context, id, oldHash, newHash string, ev *apikey.Event) (err error) {
	ctx, span := s.start(ctx, "set_hash", KeyID.String(id))
	defer func() { end(span, err) }()
	return s.next.SetHash(ctx, id, oldHash, newHash, ev)
}

func (s *store) Roll(ctx context.Context, id string, r apikey.Rollover, ev *apikey.Event) (k *apikey.Key, err error) {
	ctx, span := s.start(ctx, "roll", KeyID.String(id))
	defer func() { end(span, err) }()
	return s.next.Roll(ctx, id, r, ev)
}

func (s *store) StartGrace(ctx context.Context, id, hash string, at time.Time) (ok bool, err error) {
	ctx, span := s.start(ctx, "start_grace", KeyID.String(id))
	defer func() { end(span, err) }()
	return s.next.StartGrace(ctx, id, hash, at)
}

func (s *store) SetDisabled(ctx context.Context, id string, disabled bool, at time.Time, ev *apikey.Event) (k *apikey.Key, err error) {
	ctx, span := s.start(ctx, "set_disabled", KeyID.String(id))
	defer func() { end(span, err) }()
	return s.next.SetDisabled(ctx, id, disabled, at, ev)
}

func (s *store) ListEvents(ctx context.Context, q apikey.EventQuery) (evs []*apikey.Event, err error) {
	attrs := []attribute.KeyValue{attribute.Int("apikey.query.limit", q.Limit)}
	if q.KeyID != "" {
		attrs = append(attrs, KeyID.String(q.KeyID))
	}
	ctx, span := s.start(ctx, "list_events", attrs...)
	defer func() {
		span.SetAttributes(attribute.Int("apikey.store.rows", len(evs)))
		end(span, err)
	}()
	return s.next.ListEvents(ctx, q)
}

func (s *store) RecordUsage(ctx context.Context, counts []apikey.UsageCount, lastUsed map[string]time.Time) (err error) {
	ctx, span := s.start(ctx, "record_usage",
		attribute.Int("apikey.usage.counts", len(counts)), attribute.Int("apikey.usage.keys", len(lastUsed)))
	defer func() { end(span, err) }()
	return s.next.RecordUsage(ctx, counts, lastUsed)
}

func (s *store) Usage(ctx context.Context, id string, from, to time.Time) (counts []apikey.UsageCount, err error) {
	ctx, span := s.start(ctx, "usage", KeyID.String(id))
	defer func() {
		span.SetAttributes(attribute.Int("apikey.store.rows", len(counts)))
		end(span, err)
	}()
	return s.next.Usage(ctx, id, from, to)
}

func (s *leakStore) RecordLeak(ctx context.Context, l *apikey.Leak, ev *apikey.Event) (err error) {
	ctx, span := s.start(ctx, "record_leak", KeyID.String(l.KeyID))
	defer func() { end(span, err) }()
	return s.next.RecordLeak(ctx, l, ev)
}

func (s *leakStore) ListLeaks(ctx context.Context, q apikey.LeakQuery) (leaks []*apikey.Leak, err error) {
	attrs := []attribute.KeyValue{attribute.Int("apikey.query.limit", q.Limit)}
	if q.KeyID != "" {
		attrs = append(attrs, KeyID.String(q.KeyID))
	}
	ctx, span := s.start(ctx, "list_leaks", attrs...)
	defer func() {
		span.SetAttributes(attribute.Int("apikey.store.rows", len(leaks)))
		end(span, err)
	}()
	return s.next.ListLeaks(ctx, q)
}
