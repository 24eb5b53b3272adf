package outbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/big"
	"net/http"
	"sync"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/webhook"
)

// Defaults of Worker.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultMaxAttempts = 12
	DefaultBackoff     = 10 * time.Second
	DefaultMaxBackoff  = time.Hour
	DefaultLease       = time.Minute
	DefaultBatch       = 200
	DefaultConcurrency = 50
	DefaultPoll        = 250 * time.Millisecond
	DefaultLoops       = 4
)

// Worker sends due deliveries. Set its fields, then call Run; every
// instance of the service runs one over the same database. Its zero
// fields take the defaults above.
type Worker struct {
	// Store holds the deliveries. Required.
	Store Store
	// Key returns the current record of a key for the payload's snapshot,
	// or an error when there is none (a deleted key: the snapshot is
	// null). Nil leaves every snapshot null.
	Key func(ctx context.Context, id string) (*apikey.Key, error)
	// Client sends the messages. Nil means a client that follows no
	// redirect (a 3xx answer is a failed attempt) and applies Timeout.
	Client *http.Client
	// Timeout bounds one attempt: DefaultTimeout (10s) when zero.
	Timeout time.Duration
	// MaxAttempts is the number of attempts before a delivery fails:
	// DefaultMaxAttempts (12) when zero.
	MaxAttempts int
	// Backoff is the delay after the first failed attempt; it doubles
	// after each (up to MaxBackoff), and each delay is drawn at random
	// between half and all of it (jitter). DefaultBackoff (10s) when zero.
	Backoff time.Duration
	// MaxBackoff caps the delay: DefaultMaxBackoff (1h) when zero.
	MaxBackoff time.Duration
	// Lease is how long a claimed delivery is reserved for this worker: if
	// the process dies, the others take it over after it. It must exceed
	// the time a batch takes (Timeout × Batch/Concurrency in the worst
	// case): DefaultLease (1m) when zero.
	Lease time.Duration
	// Batch is the most deliveries claimed at once: DefaultBatch (200).
	Batch int
	// Concurrency is the most messages in flight: DefaultConcurrency (50).
	Concurrency int
	// Poll is the pause when nothing was due: DefaultPoll (250ms).
	Poll time.Duration
	// Loops is how many batches Run has in flight at once, each claimed,
	// sent and recorded by a loop of its own while the others wait for
	// the database or the receivers; the messages of all of them count
	// against Concurrency. DefaultLoops (4) when zero.
	Loops int
	// Name identifies the worker in leases; empty means a random one.
	Name string
	// Logger receives the failures of the store; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	once sync.Once
	sem  chan struct{} // Concurrency slots, shared by the loops
}

func (w *Worker) init() {
	w.once.Do(func() {
		if w.Timeout <= 0 {
			w.Timeout = DefaultTimeout
		}
		if w.MaxAttempts <= 0 {
			w.MaxAttempts = DefaultMaxAttempts
		}
		if w.Backoff <= 0 {
			w.Backoff = DefaultBackoff
		}
		if w.MaxBackoff <= 0 {
			w.MaxBackoff = DefaultMaxBackoff
		}
		if w.Lease <= 0 {
			w.Lease = DefaultLease
		}
		if w.Batch <= 0 {
			w.Batch = DefaultBatch
		}
		if w.Concurrency <= 0 {
			w.Concurrency = DefaultConcurrency
		}
		if w.Poll <= 0 {
			w.Poll = DefaultPoll
		}
		if w.Loops <= 0 {
			w.Loops = DefaultLoops
		}
		w.sem = make(chan struct{}, w.Concurrency)
		if w.Name == "" {
			b := make([]byte, 8)
			_, _ = rand.Read(b)
			w.Name = "worker-" + hex.EncodeToString(b)
		}
		if w.Logger == nil {
			w.Logger = slog.Default()
		}
		if w.Now == nil {
			w.Now = time.Now
		}
		if w.Client == nil {
			w.Client = &http.Client{
				Timeout: w.Timeout,
				CheckRedirect: func(*http.Request, []*http.Request) error {
					return http.ErrUseLastResponse
				},
				Transport: &http.Transport{
					Proxy:               http.ProxyFromEnvironment,
					MaxIdleConnsPerHost: w.Concurrency,
					IdleConnTimeout:     90 * time.Second,
					TLSHandshakeTimeout: w.Timeout,
				},
			}
		}
	})
}

// Run sends due deliveries until ctx is done, with Loops loops. Store
// failures are logged and retried after Poll.
func (w *Worker) Run(ctx context.Context) {
	w.init()
	var wg sync.WaitGroup
	for range w.Loops {
		wg.Go(func() { w.loop(ctx) })
	}
	wg.Wait()
}

func (w *Worker) loop(ctx context.Context) {
	for ctx.Err() == nil {
		n, err := w.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			w.Logger.Warn("apikey: webhook deliveries: the database failed; retrying", "err", err)
		}
		if n < w.Batch || err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(w.Poll):
			}
		}
	}
}

// RunOnce claims one batch of due deliveries, sends them and records the
// outcome, and returns how many it claimed.
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	w.init()
	if w.Store == nil {
		return 0, errNoStore
	}
	jobs, err := w.Store.Claim(ctx, w.Name, w.Now().UTC(), w.Lease, w.Batch)
	if err != nil || len(jobs) == 0 {
		return 0, err
	}
	results := make([]Result, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		w.sem <- struct{}{}
		go func() {
			defer func() { <-w.sem; wg.Done() }()
			results[i] = w.send(ctx, j)
		}()
	}
	wg.Wait()
	// The outcome is recorded even when ctx ended meanwhile (a stop):
	// otherwise the attempts would be repeated after the lease.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return len(jobs), w.Store.Finish(fctx, w.Name, results)
}

// Payload is the body of a message.
type Payload struct {
	Type apikey.EventType `json:"type"`
	// Timestamp is when the event happened.
	Timestamp time.Time `json:"timestamp"`
	Data      Data      `json:"data"`
}

// Data is the data member of a message: the audit entry and the key as
// it is when the delivery is first attempted (null once deleted, or for
// events about owners). It never holds a secret or a hash.
type Data struct {
	EventID int64                    `json:"event_id"`
	KeyID   string                   `json:"key_id"`
	Owner   string                   `json:"owner,omitempty"`
	Actor   string                   `json:"actor,omitempty"`
	URL     string                   `json:"url,omitempty"`
	Changes map[string]apikey.Change `json:"changes,omitempty"`
	Key     *apikey.Key              `json:"key"`
}

// payload returns the body of j: the one of its earlier attempts, or a
// new one.
func (w *Worker) payload(ctx context.Context, j *Job) ([]byte, error) {
	if len(j.Payload) > 0 {
		return j.Payload, nil
	}
	e := j.Event
	p := Payload{Type: e.Type, Timestamp: e.At.UTC(), Data: Data{EventID: e.ID, KeyID: e.KeyID, Owner: e.Owner, Actor: e.Actor, URL: e.URL, Changes: e.Changes}}
	if w.Key != nil && apikey.ValidID(e.KeyID) {
		k, err := w.Key(ctx, e.KeyID)
		switch {
		case err == nil:
			p.Data.Key = k
		case !errors.Is(err, apikey.ErrNotFound):
			return nil, err
		}
	}
	return json.Marshal(p)
}

// send makes one attempt at j.
func (w *Worker) send(ctx context.Context, j *Job) Result {
	start := w.Now()
	res := Result{Seq: j.Seq, Attempt: Attempt{N: j.Attempts, At: start.UTC()}}
	body, err := w.payload(ctx, j)
	if err == nil {
		res.Payload = body
		var secret webhook.Secret
		if secret, err = webhook.ParseSecret(j.Secret); err == nil {
			res.Attempt.Status, err = w.post(ctx, j, body, secret)
		}
	}
	res.Attempt.Duration = w.Now().Sub(start)
	switch {
	case err == nil:
		res.State = StateDelivered
	case j.Attempts >= w.MaxAttempts:
		res.State = StateFailed
		res.Attempt.Error = err.Error()
	default:
		res.State = StatePending
		res.Attempt.Error = err.Error()
		res.NextAt = w.Now().UTC().Add(w.delay(j.Attempts))
	}
	return res
}

// delay is the pause after the n-th failed attempt: Backoff × 2^(n-1),
// at most MaxBackoff, drawn between half and all of it.
func (w *Worker) delay(n int) time.Duration {
	d := float64(w.Backoff) * math.Pow(2, float64(n-1))
	if d > float64(w.MaxBackoff) {
		d = float64(w.MaxBackoff)
	}
	half := int64(d / 2)
	if half <= 0 {
		return time.Duration(d)
	}
	r, err := rand.Int(rand.Reader, big.NewInt(half+1))
	if err != nil {
		return time.Duration(d)
	}
	return time.Duration(half + r.Int64())
}

// post sends one message and returns the status; any answer but a 2xx is
// an error.
func (w *Worker) post(ctx context.Context, j *Job, body []byte, secret webhook.Secret) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, w.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("bad endpoint URL: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "apikey-webhooks/1")
	webhook.SetHeaders(req.Header, j.ID, w.Now(), body, secret)
	resp, err := w.Client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("the endpoint answered %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}
