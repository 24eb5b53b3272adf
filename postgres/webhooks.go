package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/outbox"
)

var (
	_ outbox.Store           = (*WebhookStore)(nil)
	_ apikey.OccurrenceStore = (*Store)(nil)
)

// WebhookStore keeps webhook endpoints and their deliveries in the Store's
// database (outbox.Store). The database itself queues the deliveries: a
// trigger on the audit log (migration 0014) inserts one per matching
// enabled endpoint in the transaction of every audit entry. Claims take
// rows with FOR UPDATE SKIP LOCKED and a lease, so that the workers of
// several instances never send one delivery at the same time.
type WebhookStore struct{ s *Store }

// Webhooks returns the store of webhook endpoints and deliveries.
func (s *Store) Webhooks() *WebhookStore { return &WebhookStore{s: s} }

func eventsArg(ts []apikey.EventType) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = string(t)
	}
	return out
}

const endpointColumns = `id, url, events, enabled, secret, created_at, updated_at`

func scanEndpoint(row pgx.Row) (*outbox.Endpoint, error) {
	var (
		ep     outbox.Endpoint
		events []string
	)
	if err := row.Scan(&ep.ID, &ep.URL, &events, &ep.Enabled, &ep.Secret, &ep.CreatedAt, &ep.UpdatedAt); err != nil {
		return nil, err
	}
	ep.Events = make([]apikey.EventType, len(events))
	for i, e := range events {
		ep.Events[i] = apikey.EventType(e)
	}
	ep.CreatedAt, ep.UpdatedAt = ep.CreatedAt.UTC(), ep.UpdatedAt.UTC()
	return &ep, nil
}

func webhookErr(op string, err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return apikey.ErrWebhookNotFound
	}
	if errors.Is(err, apikey.ErrWebhookNotFound) || errors.Is(err, apikey.ErrDeliveryNotFound) {
		return err
	}
	return mapErr(op, err)
}

// CreateEndpoint implements outbox.Store.
func (w *WebhookStore) CreateEndpoint(ctx context.Context, ep *outbox.Endpoint, ev *apikey.Event) error {
	return webhookErr("create webhook", pgx.BeginFunc(ctx, w.s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO apikey_webhook_endpoints (`+endpointColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			ep.ID, ep.URL, eventsArg(ep.Events), ep.Enabled, ep.Secret, timeArg(ep.CreatedAt), timeArg(ep.UpdatedAt)); err != nil {
			return err
		}
		return writeEvent(ctx, tx, ev, "", outbox.Diff(nil, ep))
	}))
}

// Endpoint implements outbox.Store.
func (w *WebhookStore) Endpoint(ctx context.Context, id string) (*outbox.Endpoint, error) {
	ep, err := scanEndpoint(w.s.pool.QueryRow(ctx, `SELECT `+endpointColumns+` FROM apikey_webhook_endpoints WHERE id = $1`, id))
	return ep, webhookErr("get webhook", err)
}

// Endpoints implements outbox.Store.
func (w *WebhookStore) Endpoints(ctx context.Context) ([]*outbox.Endpoint, error) {
	rows, err := w.s.pool.Query(ctx, `SELECT `+endpointColumns+` FROM apikey_webhook_endpoints ORDER BY created_at, id`)
	if err != nil {
		return nil, mapErr("list webhooks", err)
	}
	defer rows.Close()
	out := []*outbox.Endpoint{}
	for rows.Next() {
		ep, err := scanEndpoint(rows)
		if err != nil {
			return nil, mapErr("list webhooks", err)
		}
		out = append(out, ep)
	}
	return out, mapErr("list webhooks", rows.Err())
}

// UpdateEndpoint implements outbox.Store.
func (w *WebhookStore) UpdateEndpoint(ctx context.Context, id string, u outbox.EndpointUpdate, at time.Time, ev *apikey.Event) (*outbox.Endpoint, error) {
	var after *outbox.Endpoint
	err := pgx.BeginFunc(ctx, w.s.pool, func(tx pgx.Tx) error {
		before, err := scanEndpoint(tx.QueryRow(ctx, `SELECT `+endpointColumns+` FROM apikey_webhook_endpoints WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return err
		}
		a := *before
		if u.URL != nil {
			a.URL = *u.URL
		}
		if u.Events != nil {
			a.Events = *u.Events
		}
		if u.Enabled != nil {
			a.Enabled = *u.Enabled
		}
		if u.Secret != nil {
			a.Secret = *u.Secret
		}
		a.UpdatedAt = timeArg(at)
		if _, err := tx.Exec(ctx, `UPDATE apikey_webhook_endpoints SET url = $1, events = $2, enabled = $3, secret = $4, updated_at = $5 WHERE id = $6`,
			a.URL, eventsArg(a.Events), a.Enabled, a.Secret, a.UpdatedAt, id); err != nil {
			return err
		}
		after = &a
		return writeEvent(ctx, tx, ev, "", outbox.Diff(before, &a))
	})
	return after, webhookErr("update webhook", err)
}

// DeleteEndpoint implements outbox.Store.
func (w *WebhookStore) DeleteEndpoint(ctx context.Context, id string, ev *apikey.Event) error {
	return webhookErr("delete webhook", pgx.BeginFunc(ctx, w.s.pool, func(tx pgx.Tx) error {
		before, err := scanEndpoint(tx.QueryRow(ctx, `DELETE FROM apikey_webhook_endpoints WHERE id = $1 RETURNING `+endpointColumns, id))
		if err != nil {
			return err
		}
		return writeEvent(ctx, tx, ev, "", outbox.Diff(before, nil))
	}))
}

const deliveryColumns = `seq, msg_id, endpoint_id, event_id, event_type, state, attempts, next_at, created_at, delivered_at, last_status, last_error`

func scanDelivery(row pgx.Row, extra ...any) (*outbox.Delivery, error) {
	var (
		d          outbox.Delivery
		typ, state string
		next       time.Time
		delivered  pgtype.Timestamptz
	)
	dest := append([]any{&d.Seq, &d.ID, &d.EndpointID, &d.EventID, &typ, &state, &d.Attempts, &next, &d.CreatedAt, &delivered, &d.LastStatus, &d.LastError}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	d.Type, d.State = apikey.EventType(typ), outbox.State(state)
	d.CreatedAt = d.CreatedAt.UTC()
	if d.State == outbox.StatePending {
		n := next.UTC()
		d.NextAttemptAt = &n
	}
	d.DeliveredAt = utcPtr(delivered)
	return &d, nil
}

// Deliveries implements outbox.Store.
func (w *WebhookStore) Deliveries(ctx context.Context, q outbox.DeliveryQuery) ([]*outbox.Delivery, error) {
	where := []string{"endpoint_id = $1"}
	args := []any{q.EndpointID}
	if q.State != "" {
		args = append(args, string(q.State))
		where = append(where, "state = $"+strconv.Itoa(len(args)))
	}
	if q.Before > 0 {
		args = append(args, q.Before)
		where = append(where, "seq < $"+strconv.Itoa(len(args)))
	}
	args = append(args, q.Limit)
	rows, err := w.s.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM apikey_webhook_deliveries WHERE `+
		strings.Join(where, " AND ")+` ORDER BY seq DESC LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, mapErr("list deliveries", err)
	}
	defer rows.Close()
	out := []*outbox.Delivery{}
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, mapErr("list deliveries", err)
		}
		out = append(out, d)
	}
	return out, mapErr("list deliveries", rows.Err())
}

// Delivery implements outbox.Store.
func (w *WebhookStore) Delivery(ctx context.Context, endpointID, id string) (*outbox.Delivery, error) {
	d, err := scanDelivery(w.s.pool.QueryRow(ctx, `SELECT `+deliveryColumns+` FROM apikey_webhook_deliveries WHERE endpoint_id = $1 AND msg_id = $2`, endpointID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		if _, err := w.Endpoint(ctx, endpointID); err != nil {
			return nil, err
		}
		return nil, apikey.ErrDeliveryNotFound
	}
	if err != nil {
		return nil, mapErr("get delivery", err)
	}
	rows, err := w.s.pool.Query(ctx, `SELECT n, at, status, error, duration_us FROM apikey_webhook_attempts WHERE delivery_seq = $1 ORDER BY id`, d.Seq)
	if err != nil {
		return nil, mapErr("get delivery", err)
	}
	defer rows.Close()
	d.Log = []outbox.Attempt{}
	for rows.Next() {
		var (
			a  outbox.Attempt
			us int64
		)
		if err := rows.Scan(&a.N, &a.At, &a.Status, &a.Error, &us); err != nil {
			return nil, mapErr("get delivery", err)
		}
		a.At = a.At.UTC()
		a.Duration = time.Duration(us) * time.Microsecond
		d.Log = append(d.Log, a)
	}
	return d, mapErr("get delivery", rows.Err())
}

// Resend implements outbox.Store.
func (w *WebhookStore) Resend(ctx context.Context, endpointID, id string, at time.Time) (*outbox.Delivery, error) {
	tag, err := w.s.pool.Exec(ctx, `UPDATE apikey_webhook_deliveries SET state = 'pending', attempts = 0, next_at = $1, delivered_at = NULL, lease_owner = NULL, lease_until = NULL
		WHERE endpoint_id = $2 AND msg_id = $3`, timeArg(at), endpointID, id)
	if err != nil {
		return nil, mapErr("resend delivery", err)
	}
	if tag.RowsAffected() == 0 {
		if _, err := w.Endpoint(ctx, endpointID); err != nil {
			return nil, err
		}
		return nil, apikey.ErrDeliveryNotFound
	}
	return w.Delivery(ctx, endpointID, id)
}

// Claim implements outbox.Store: FOR UPDATE SKIP LOCKED makes concurrent
// claims pass over each other's rows instead of waiting for them, and the
// lease keeps a claimed row from the others after the claim commits.
func (w *WebhookStore) Claim(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]*outbox.Job, error) {
	rows, err := w.s.pool.Query(ctx, `WITH c AS (
			SELECT d.seq FROM apikey_webhook_deliveries d JOIN apikey_webhook_endpoints e ON e.id = d.endpoint_id
			WHERE d.state = 'pending' AND e.enabled AND d.next_at <= $1 AND (d.lease_until IS NULL OR d.lease_until <= $1)
			ORDER BY d.next_at LIMIT $2
			FOR UPDATE OF d SKIP LOCKED)
		UPDATE apikey_webhook_deliveries d SET lease_owner = $3, lease_until = $4, attempts = d.attempts + 1
		FROM c, apikey_webhook_endpoints e, apikey_events ev
		WHERE d.seq = c.seq AND e.id = d.endpoint_id AND ev.id = d.event_id
		RETURNING d.seq, d.msg_id, d.endpoint_id, d.event_id, d.event_type, d.state, d.attempts, d.next_at, d.created_at, d.delivered_at,
			d.last_status, d.last_error, d.payload, e.url, e.secret, ev.at, ev.actor, ev.key_id, ev.owner, ev.changes::text, ev.url`,
		timeArg(now), limit, owner, timeArg(now.Add(lease)))
	if err != nil {
		return nil, mapErr("claim deliveries", err)
	}
	defer rows.Close()
	var jobs []*outbox.Job
	for rows.Next() {
		j := &outbox.Job{}
		var changes string
		d, err := scanDelivery(rows, &j.Payload, &j.URL, &j.Secret, &j.Event.At, &j.Event.Actor, &j.Event.KeyID, &j.Event.Owner, &changes, &j.Event.URL)
		if err != nil {
			return nil, mapErr("claim deliveries", err)
		}
		j.Delivery = *d
		j.Event.ID, j.Event.Type, j.Event.At = d.EventID, d.Type, j.Event.At.UTC()
		if j.Event.Changes, err = decodeChanges(changes); err != nil {
			return nil, fmt.Errorf("postgres: claim deliveries: event %d: %w", d.EventID, err)
		}
		jobs = append(jobs, j)
	}
	return jobs, mapErr("claim deliveries", rows.Err())
}

// Finish implements outbox.Store in one statement, whatever the number of
// results: the attempts are inserted and the deliveries updated from
// arrays.
func (w *WebhookStore) Finish(ctx context.Context, owner string, results []outbox.Result) error {
	if len(results) == 0 {
		return nil
	}
	n := len(results)
	var (
		seqs, durs        = make([]int64, n), make([]int64, n)
		nums, statuses    = make([]int32, n), make([]int32, n)
		ats               = make([]time.Time, n)
		errs, states      = make([]string, n), make([]string, n)
		nexts, delivereds = make([]*time.Time, n), make([]*time.Time, n)
		payloads          = make([][]byte, n)
	)
	for i, r := range results {
		a := r.Attempt
		seqs[i], nums[i], ats[i], statuses[i], errs[i], durs[i] = r.Seq, int32(a.N), timeArg(a.At), int32(a.Status), a.Error, a.Duration.Microseconds()
		states[i], payloads[i] = string(r.State), r.Payload
		if r.State == outbox.StatePending {
			t := timeArg(r.NextAt)
			nexts[i] = &t
		}
		if r.State == outbox.StateDelivered {
			t := timeArg(a.At.Add(a.Duration))
			delivereds[i] = &t
		}
	}
	_, err := w.s.pool.Exec(ctx, `WITH r AS (
			SELECT * FROM unnest($1::bigint[], $2::int[], $3::timestamptz[], $4::int[], $5::text[], $6::bigint[],
				$7::text[], $8::timestamptz[], $9::timestamptz[], $10::bytea[])
				AS r (seq, n, at, status, error, dur, state, next_at, delivered_at, payload)
		), logged AS (
			INSERT INTO apikey_webhook_attempts (delivery_seq, n, at, status, error, duration_us)
			SELECT r.seq, r.n, r.at, r.status, r.error, r.dur FROM r
			WHERE EXISTS (SELECT 1 FROM apikey_webhook_deliveries d WHERE d.seq = r.seq)
		)
		UPDATE apikey_webhook_deliveries d SET state = r.state, next_at = coalesce(r.next_at, d.next_at),
			delivered_at = r.delivered_at, last_status = r.status, last_error = r.error,
			payload = coalesce(d.payload, r.payload), lease_owner = NULL, lease_until = NULL
		FROM r WHERE d.seq = r.seq AND d.lease_owner = $11`,
		seqs, nums, ats, statuses, errs, durs, states, nexts, delivereds, payloads, owner)
	return mapErr("finish deliveries", err)
}

// RecordOccurrences implements apikey.OccurrenceStore in one transaction:
// the primary key of apikey_occurrences lets each occurrence in once; a
// concurrent transaction recording the same one waits for this one, then
// inserts nothing.
func (s *Store) RecordOccurrences(ctx context.Context, occ []apikey.Occurrence) error {
	for _, o := range occ {
		if o.Event == nil || o.Event.Type == "" || o.Event.KeyID == "" {
			return fmt.Errorf("%w: postgres: record occurrences: an event without a type or key id", apikey.ErrInvalidInput)
		}
	}
	return mapErr("record occurrences", pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, o := range occ {
			var owner string
			err := tx.QueryRow(ctx, `SELECT owner FROM ONLY apikey_keys WHERE id = $1`, o.Event.KeyID).Scan(&owner)
			if errors.Is(err, pgx.ErrNoRows) {
				continue
			}
			if err != nil {
				return err
			}
			tag, err := tx.Exec(ctx, `INSERT INTO apikey_occurrences (key_id, type, due, event_id) VALUES ($1, $2, $3, 0)
				ON CONFLICT DO NOTHING`, o.Event.KeyID, string(o.Event.Type), timeArg(o.Due))
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				continue
			}
			if err := writeEvent(ctx, tx, o.Event, owner, nil); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE apikey_occurrences SET event_id = $1 WHERE key_id = $2 AND type = $3 AND due = $4`,
				o.Event.ID, o.Event.KeyID, string(o.Event.Type), timeArg(o.Due)); err != nil {
				return err
			}
		}
		return nil
	}))
}

// decodeChanges decodes the stored changes of an audit entry; an empty
// object is nil.
func decodeChanges(s string) (map[string]apikey.Change, error) {
	var c map[string]apikey.Change
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return nil, err
	}
	if len(c) == 0 {
		return nil, nil
	}
	return c, nil
}
