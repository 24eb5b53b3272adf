package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/outbox"
	"github.com/go-apikey/apikey/postgres"
	"github.com/go-apikey/apikey/sqlite"
)

// hookOptions are the flags of serve about webhooks and the scheduler.
type hookOptions struct {
	noWorker    bool          // --no-webhook-worker
	timeout     time.Duration // --webhook-timeout
	attempts    int           // --webhook-attempts
	backoff     time.Duration // --webhook-backoff
	maxBackoff  time.Duration // --webhook-max-backoff
	lease       time.Duration // --webhook-lease
	concurrency int           // --webhook-concurrency

	interval          time.Duration // --schedule-interval; 0 is off
	expiryWarning     days          // --expiry-warning
	inactivityWarning days          // --inactivity-warning

	// inactiveAt says when a key expires for inactivity, for the
	// key.inactive_warning rule; nil means never (no warning). serve sets
	// it to Key.InactiveAt with the service's default
	// (--default-inactivity-expiry).
	inactiveAt func(*apikey.Key) (time.Time, bool)
}

// days is a duration flag that also reads day and week terms ("7d",
// "2w", "1d12h"), as apikey.ParseExpiry reads them.
type days time.Duration

func (d *days) String() string { return time.Duration(*d).String() }
func (d *days) Type() string   { return "duration" }
func (d *days) Set(s string) error {
	if _, err := time.Parse(time.RFC3339, s); err == nil {
		return errors.New("want a duration such as 7d or 36h, not an instant")
	}
	epoch := time.Unix(0, 0).UTC()
	t, err := apikey.ParseExpiry(s, epoch)
	if err != nil {
		return errors.New("want a positive duration such as 7d, 2w or 36h")
	}
	*d = days(t.Sub(epoch))
	return nil
}

var _ pflag.Value = (*days)(nil)

func (o *hookOptions) flags(f *pflag.FlagSet) {
	f.BoolVar(&o.noWorker, "no-webhook-worker", false, "do not send webhook deliveries from this instance (other instances on the same database do)")
	f.DurationVar(&o.timeout, "webhook-timeout", outbox.DefaultTimeout, "how long one webhook delivery attempt may take")
	f.IntVar(&o.attempts, "webhook-attempts", outbox.DefaultMaxAttempts, "attempts of a webhook delivery before it is failed")
	f.DurationVar(&o.backoff, "webhook-backoff", outbox.DefaultBackoff, "delay after the first failed attempt; it doubles after each (with jitter) up to --webhook-max-backoff")
	f.DurationVar(&o.maxBackoff, "webhook-max-backoff", outbox.DefaultMaxBackoff, "longest delay between two attempts of a webhook delivery")
	f.DurationVar(&o.lease, "webhook-lease", outbox.DefaultLease, "how long a claimed delivery is reserved for this instance; if it dies, others send it after this")
	f.IntVar(&o.concurrency, "webhook-concurrency", outbox.DefaultConcurrency, "most webhook messages in flight from this instance")
	f.DurationVar(&o.interval, "schedule-interval", time.Minute, "how often the scheduler looks for keys about to expire, expired or inactive (0 turns it off on this instance)")
	o.expiryWarning = days(7 * 24 * time.Hour)
	f.Var(&o.expiryWarning, "expiry-warning", "key.expiring is recorded this long before a key's expiry (such as 7d)")
	o.inactivityWarning = days(7 * 24 * time.Hour)
	f.Var(&o.inactivityWarning, "inactivity-warning", "key.inactive_warning is recorded this long before a key expires for inactivity (such as 7d)")
}

// check validates the flags.
func (o *hookOptions) check(a *app) error {
	switch {
	case o.timeout <= 0:
		return usagef("invalid %s %s: must be positive", a.setting("webhook-timeout"), o.timeout)
	case o.attempts < 1 || o.attempts > 100:
		return usagef("invalid %s %d: must be from 1 to 100", a.setting("webhook-attempts"), o.attempts)
	case o.backoff <= 0:
		return usagef("invalid %s %s: must be positive", a.setting("webhook-backoff"), o.backoff)
	case o.maxBackoff < o.backoff:
		return usagef("invalid %s %s: must be at least --webhook-backoff (%s)", a.setting("webhook-max-backoff"), o.maxBackoff, o.backoff)
	case o.lease <= o.timeout:
		return usagef("invalid %s %s: must exceed --webhook-timeout (%s)", a.setting("webhook-lease"), o.lease, o.timeout)
	case o.concurrency < 1 || o.concurrency > 1000:
		return usagef("invalid %s %d: must be from 1 to 1000", a.setting("webhook-concurrency"), o.concurrency)
	case o.interval < 0:
		return usagef("invalid %s %s: must be positive, or 0 to turn the scheduler off", a.setting("schedule-interval"), o.interval)
	case o.expiryWarning <= 0:
		return usagef("invalid %s: must be positive", a.setting("expiry-warning"))
	case o.inactivityWarning <= 0:
		return usagef("invalid %s: must be positive", a.setting("inactivity-warning"))
	}
	return nil
}

// webhookStore returns the outbox of the database.
func (db *database) webhookStore() outbox.Store {
	switch s := db.store.(type) {
	case *sqlite.Store:
		return s.Webhooks()
	case *postgres.Store:
		return s.Webhooks()
	}
	return nil
}

// webhookService returns the management of the database's webhooks, by
// the Manager's clock.
func (db *database) webhookService(m *apikey.Manager) *outbox.Service {
	ws := db.webhookStore()
	if ws == nil {
		return nil
	}
	return &outbox.Service{Store: ws, Now: m.Now}
}

// startHooks starts the webhook worker and the scheduler of serve; the
// returned function stops them and waits until they have.
func startHooks(ctx context.Context, o hookOptions, db *database, m *apikey.Manager, logger *slog.Logger) func() {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if ws := db.webhookStore(); ws != nil && !o.noWorker {
		w := &outbox.Worker{Store: ws, Key: m.Get, Timeout: o.timeout, MaxAttempts: o.attempts, Backoff: o.backoff,
			MaxBackoff: o.maxBackoff, Lease: o.lease, Concurrency: o.concurrency, Logger: logger}
		wg.Go(func() { w.Run(ctx) })
	}
	if occ, ok := db.store.(apikey.OccurrenceStore); ok && o.interval > 0 {
		rules := []apikey.Rule{apikey.ExpiringRule(time.Duration(o.expiryWarning)), apikey.ExpiredOrInactiveRule(o.inactiveAt)}
		if o.inactiveAt != nil {
			rules = append(rules, apikey.InactiveWarningRule(o.inactiveAt, time.Duration(o.inactivityWarning)))
		}
		s := &apikey.Scheduler{Store: db.store, Occurrences: occ, Now: m.Now, Rules: rules}
		wg.Go(func() {
			s.Run(ctx, o.interval, func(err error) {
				logger.Warn("apikey: scheduler: cannot record time-driven events; retrying at the next interval", "err", err)
			})
		})
	}
	return func() { cancel(); wg.Wait() }
}

// hooksHelp is the part of serve's help about webhooks and the scheduler.
var hooksHelp = strings.TrimSpace(fmt.Sprintf(`
Webhooks (see docs/lifecycle.md): every audited event is queued, in the
transaction of the change, for each enabled endpoint registered with
"apikey webhook create" (or POST /v1/webhooks) whose filter it matches.
Every instance sends the due deliveries (unless --no-webhook-worker): it
claims them in the database for --webhook-lease, so that each is sent by
one instance at a time, POSTs each as a Standard Webhooks message signed
with the endpoint's secret within --webhook-timeout, and retries a failed
one after --webhook-backoff, doubled after each failure (with jitter) up to
--webhook-max-backoff, until --webhook-attempts (%d) have failed.
The scheduler (every --schedule-interval, 1m) records key.expiring
--expiry-warning (7d) before a key's expiry, key.expired when it passes
and key.inactive_warning before an inactivity expiry, each once per key,
whatever the number of instances.`, outbox.DefaultMaxAttempts))
