package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/outbox"
)

var (
	_ outbox.Store           = (*WebhookStore)(nil)
	_ apikey.OccurrenceStore = (*Store)(nil)
)

// WebhookStore keeps webhook endpoints and their deliveries in the Store's
// database (outbox.Store). The database itself queues the deliveries: a
// trigger on the audit log (migration 0013) inserts one per matching
// enabled endpoint in the transaction of every audit entry.
type WebhookStore struct{ s *Store }

// Webhooks returns the store of webhook endpoints and deliveries.
func (s *Store) Webhooks() *WebhookStore { return &WebhookStore{s: s} }

func eventsJSON(ts []apikey.EventType) string {
	if len(ts) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(ts)
	return string(b)
}

const endpointColumns = `id, url, events, enabled, secret, created_at, updated_at`

func scanEndpoint(row interface{ Scan(...any) error }) (*outbox.Endpoint, error) {
	var (
		ep                   outbox.Endpoint
		events, created, upd string
	)
	if err := row.Scan(&ep.ID, &ep.URL, &events, &ep.Enabled, &ep.Secret, &created, &upd); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(events), &ep.Events); err != nil {
		return nil, fmt.Errorf("endpoint %s: malformed events: %w", ep.ID, err)
	}
	var err error
	if ep.CreatedAt, err = parseTime(created); err != nil {
		return nil, err
	}
	if ep.UpdatedAt, err = parseTime(upd); err != nil {
		return nil, err
	}
	return &ep, nil
}

func webhookErr(op string, err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return apikey.ErrWebhookNotFound
	}
	return storeErr(op, err)
}

// CreateEndpoint implements outbox.Store.
func (w *WebhookStore) CreateEndpoint(ctx context.Context, ep *outbox.Endpoint, ev *apikey.Event) error {
	return webhookErr("create webhook", w.s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO apikey_webhook_endpoints (`+endpointColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			ep.ID, ep.URL, eventsJSON(ep.Events), ep.Enabled, ep.Secret, formatTime(ep.CreatedAt), formatTime(ep.UpdatedAt)); err != nil {
			return err
		}
		return writeEvent(ctx, tx, ev, "", outbox.Diff(nil, ep))
	}))
}

// Endpoint implements outbox.Store.
func (w *WebhookStore) Endpoint(ctx context.Context, id string) (*outbox.Endpoint, error) {
	ep, err := scanEndpoint(w.s.db.QueryRowContext(ctx, `SELECT `+endpointColumns+` FROM apikey_webhook_endpoints WHERE id = ?`, id))
	return ep, webhookErr("get webhook", err)
}

// Endpoints implements outbox.Store.
func (w *WebhookStore) Endpoints(ctx context.Context) ([]*outbox.Endpoint, error) {
	rows, err := w.s.db.QueryContext(ctx, `SELECT `+endpointColumns+` FROM apikey_webhook_endpoints ORDER BY created_at, id`)
	if err != nil {
		return nil, storeErr("list webhooks", err)
	}
	defer rows.Close()
	out := []*outbox.Endpoint{}
	for rows.Next() {
		ep, err := scanEndpoint(rows)
		if err != nil {
			return nil, storeErr("list webhooks", err)
		}
		out = append(out, ep)
	}
	return out, storeErr("list webhooks", rows.Err())
}

// UpdateEndpoint implements outbox.Store.
func (w *WebhookStore) UpdateEndpoint(ctx context.Context, id string, u outbox.EndpointUpdate, at time.Time, ev *apikey.Event) (*outbox.Endpoint, error) {
	var after *outbox.Endpoint
	err := w.s.inTx(ctx, func(tx *sql.Tx) error {
		before, err := scanEndpoint(tx.QueryRowContext(ctx, `SELECT `+endpointColumns+` FROM apikey_webhook_endpoints WHERE id = ?`, id))
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
		a.UpdatedAt = at
		if _, err := tx.ExecContext(ctx, `UPDATE apikey_webhook_endpoints SET url = ?, events = ?, enabled = ?, secret = ?, updated_at = ? WHERE id = ?`,
			a.URL, eventsJSON(a.Events), a.Enabled, a.Secret, formatTime(at), id); err != nil {
			return err
		}
		after = &a
		return writeEvent(ctx, tx, ev, "", outbox.Diff(before, &a))
	})
	return after, webhookErr("update webhook", err)
}

// DeleteEndpoint implements outbox.Store.
func (w *WebhookStore) DeleteEndpoint(ctx context.Context, id string, ev *apikey.Event) error {
	return webhookErr("delete webhook", w.s.inTx(ctx, func(tx *sql.Tx) error {
		before, err := scanEndpoint(tx.QueryRowContext(ctx, `SELECT `+endpointColumns+` FROM apikey_webhook_endpoints WHERE id = ?`, id))
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM apikey_webhook_endpoints WHERE id = ?`, id); err != nil {
			return err
		}
		return writeEvent(ctx, tx, ev, "", outbox.Diff(before, nil))
	}))
}

const deliveryColumns = `seq, msg_id, endpoint_id, event_id, event_type, state, attempts, next_at, created_at, delivered_at, last_status, last_error`

func scanDelivery(row interface{ Scan(...any) error }, extra ...any) (*outbox.Delivery, error) {
	var (
		d             outbox.Delivery
		typ, state    string
		next, created string
		delivered     sql.NullString
	)
	dest := append([]any{&d.Seq, &d.ID, &d.EndpointID, &d.EventID, &typ, &state, &d.Attempts, &next, &created, &delivered, &d.LastStatus, &d.LastError}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	d.Type, d.State = apikey.EventType(typ), outbox.State(state)
	var err error
	if d.CreatedAt, err = parseTime(created); err != nil {
		return nil, err
	}
	if d.State == outbox.StatePending {
		t, err := parseTime(next)
		if err != nil {
			return nil, err
		}
		d.NextAttemptAt = &t
	}
	if d.DeliveredAt, err = parseTimePtr(delivered); err != nil {
		return nil, err
	}
	return &d, nil
}

// Deliveries implements outbox.Store.
func (w *WebhookStore) Deliveries(ctx context.Context, q outbox.DeliveryQuery) ([]*outbox.Delivery, error) {
	where := []string{"endpoint_id = ?"}
	args := []any{q.EndpointID}
	if q.State != "" {
		where = append(where, "state = ?")
		args = append(args, string(q.State))
	}
	if q.Before > 0 {
		where = append(where, "seq < ?")
		args = append(args, q.Before)
	}
	args = append(args, q.Limit)
	rows, err := w.s.db.QueryContext(ctx, `SELECT `+deliveryColumns+` FROM apikey_webhook_deliveries WHERE `+
		strings.Join(where, " AND ")+` ORDER BY seq DESC LIMIT ?`, args...)
	if err != nil {
		return nil, storeErr("list deliveries", err)
	}
	defer rows.Close()
	out := []*outbox.Delivery{}
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, storeErr("list deliveries", err)
		}
		out = append(out, d)
	}
	return out, storeErr("list deliveries", rows.Err())
}

// Delivery implements outbox.Store.
func (w *WebhookStore) Delivery(ctx context.Context, endpointID, id string) (*outbox.Delivery, error) {
	d, err := scanDelivery(w.s.db.QueryRowContext(ctx, `SELECT `+deliveryColumns+` FROM apikey_webhook_deliveries WHERE endpoint_id = ? AND msg_id = ?`, endpointID, id))
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := w.Endpoint(ctx, endpointID); err != nil {
			return nil, err
		}
		return nil, apikey.ErrDeliveryNotFound
	}
	if err != nil {
		return nil, storeErr("get delivery", err)
	}
	rows, err := w.s.db.QueryContext(ctx, `SELECT n, at, status, error, duration_us FROM apikey_webhook_attempts WHERE delivery_seq = ? ORDER BY rowid`, d.Seq)
	if err != nil {
		return nil, storeErr("get delivery", err)
	}
	defer rows.Close()
	d.Log = []outbox.Attempt{}
	for rows.Next() {
		var (
			a  outbox.Attempt
			at string
			us int64
		)
		if err := rows.Scan(&a.N, &at, &a.Status, &a.Error, &us); err != nil {
			return nil, storeErr("get delivery", err)
		}
		if a.At, err = parseTime(at); err != nil {
			return nil, storeErr("get delivery", err)
		}
		a.Duration = time.Duration(us) * time.Microsecond
		d.Log = append(d.Log, a)
	}
	return d, storeErr("get delivery", rows.Err())
}

// Resend implements outbox.Store.
func (w *WebhookStore) Resend(ctx context.Context, endpointID, id string, at time.Time) (*outbox.Delivery, error) {
	res, err := w.s.execWrite(ctx, `UPDATE apikey_webhook_deliveries SET state = 'pending', attempts = 0, next_at = ?, delivered_at = NULL, lease_owner = NULL, lease_until = NULL
		WHERE endpoint_id = ? AND msg_id = ?`, formatTime(at), endpointID, id)
	if err != nil {
		return nil, storeErr("resend delivery", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := w.Endpoint(ctx, endpointID); err != nil {
			return nil, err
		}
		return nil, apikey.ErrDeliveryNotFound
	}
	return w.Delivery(ctx, endpointID, id)
}

// Claim implements outbox.Store. SQLite has one writer at a time: the
// UPDATE that takes the leases is atomic, and the rows it returns are this
// worker's.
func (w *WebhookStore) Claim(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]*outbox.Job, error) {
	var jobs []*outbox.Job
	err := w.s.inTx(ctx, func(tx *sql.Tx) error {
		nowText, until := formatTime(now), formatTime(now.Add(lease))
		claimed, err := tx.QueryContext(ctx, `UPDATE apikey_webhook_deliveries SET lease_owner = ?1, lease_until = ?2, attempts = attempts + 1
			WHERE seq IN (SELECT d.seq FROM apikey_webhook_deliveries d JOIN apikey_webhook_endpoints e ON e.id = d.endpoint_id
				WHERE d.state = 'pending' AND e.enabled = 1 AND d.next_at <= ?3 AND (d.lease_until IS NULL OR d.lease_until <= ?3)
				ORDER BY d.next_at LIMIT ?4)
			RETURNING seq`, owner, until, nowText, limit)
		if err != nil {
			return err
		}
		var seqs []string
		for claimed.Next() {
			var seq int64
			if err := claimed.Scan(&seq); err != nil {
				claimed.Close()
				return err
			}
			seqs = append(seqs, strconv.FormatInt(seq, 10))
		}
		claimed.Close()
		if err := claimed.Err(); err != nil {
			return err
		}
		if len(seqs) == 0 {
			return nil
		}
		// The seqs are integers this function formatted.
		rows, err := tx.QueryContext(ctx, `SELECT `+prefixed("d.", deliveryColumns)+`, d.payload, e.url, e.secret,
				ev.at, ev.actor, ev.key_id, ev.owner, ev.changes, ev.url
			FROM apikey_webhook_deliveries d JOIN apikey_webhook_endpoints e ON e.id = d.endpoint_id JOIN apikey_events ev ON ev.id = d.event_id
			WHERE d.seq IN (`+strings.Join(seqs, ",")+`) ORDER BY d.next_at`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			j := &outbox.Job{}
			var at, changes string
			d, err := scanDelivery(rows, &j.Payload, &j.URL, &j.Secret, &at, &j.Event.Actor, &j.Event.KeyID, &j.Event.Owner, &changes, &j.Event.URL)
			if err != nil {
				return err
			}
			j.Delivery = *d
			j.Event.ID, j.Event.Type = d.EventID, d.Type
			if j.Event.At, err = parseTime(at); err != nil {
				return err
			}
			if j.Event.Changes, err = decodeChanges(changes); err != nil {
				return err
			}
			jobs = append(jobs, j)
		}
		return rows.Err()
	})
	return jobs, storeErr("claim deliveries", err)
}

func prefixed(p, cols string) string {
	parts := strings.Split(cols, ", ")
	for i := range parts {
		parts[i] = p + parts[i]
	}
	return strings.Join(parts, ", ")
}

// Finish implements outbox.Store.
func (w *WebhookStore) Finish(ctx context.Context, owner string, results []outbox.Result) error {
	if len(results) == 0 {
		return nil
	}
	return storeErr("finish deliveries", w.s.inTx(ctx, func(tx *sql.Tx) error {
		att, err := tx.PrepareContext(ctx, `INSERT INTO apikey_webhook_attempts (delivery_seq, n, at, status, error, duration_us)
			SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS (SELECT 1 FROM apikey_webhook_deliveries WHERE seq = ?1)`)
		if err != nil {
			return err
		}
		defer att.Close()
		upd, err := tx.PrepareContext(ctx, `UPDATE apikey_webhook_deliveries SET state = ?1, next_at = coalesce(?2, next_at),
				delivered_at = ?3, last_status = ?4, last_error = ?5, payload = coalesce(payload, ?6), lease_owner = NULL, lease_until = NULL
			WHERE seq = ?7 AND lease_owner = ?8`)
		if err != nil {
			return err
		}
		defer upd.Close()
		for _, r := range results {
			a := r.Attempt
			if _, err := att.ExecContext(ctx, r.Seq, a.N, formatTime(a.At), a.Status, a.Error, a.Duration.Microseconds()); err != nil {
				return err
			}
			var next, delivered any
			if r.State == outbox.StatePending {
				next = formatTime(r.NextAt)
			}
			if r.State == outbox.StateDelivered {
				delivered = formatTime(a.At.Add(a.Duration))
			}
			if _, err := upd.ExecContext(ctx, string(r.State), next, delivered, a.Status, a.Error, r.Payload, r.Seq, owner); err != nil {
				return err
			}
		}
		return nil
	}))
}

// RecordOccurrences implements apikey.OccurrenceStore in one transaction:
// the primary key of apikey_occurrences lets each occurrence in once.
func (s *Store) RecordOccurrences(ctx context.Context, occ []apikey.Occurrence) error {
	for _, o := range occ {
		if o.Event == nil || o.Event.Type == "" || o.Event.KeyID == "" {
			return fmt.Errorf("%w: sqlite: record occurrences: an event without a type or key id", apikey.ErrInvalidInput)
		}
	}
	return storeErr("record occurrences", s.inTx(ctx, func(tx *sql.Tx) error {
		for _, o := range occ {
			var owner string
			err := tx.QueryRowContext(ctx, `SELECT owner FROM apikey_keys WHERE id = ?`, o.Event.KeyID).Scan(&owner)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return err
			}
			res, err := tx.ExecContext(ctx, `INSERT INTO apikey_occurrences (key_id, type, due, event_id) VALUES (?, ?, ?, 0)
				ON CONFLICT DO NOTHING`, o.Event.KeyID, string(o.Event.Type), formatTime(o.Due))
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				continue
			}
			if err := writeEvent(ctx, tx, o.Event, owner, nil); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE apikey_occurrences SET event_id = ? WHERE key_id = ? AND type = ? AND due = ?`,
				o.Event.ID, o.Event.KeyID, string(o.Event.Type), formatTime(o.Due)); err != nil {
				return err
			}
		}
		return nil
	}))
}
