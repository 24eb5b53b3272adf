package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/outbox"
	"github.com/go-apikey/apikey/sqlite"
)

// TestConcurrentWritersNeverLocked: 16 goroutines create keys through a
// Manager while every other writer of a running service is busy on the
// same database: the webhook worker claims and finishes the deliveries
// that the audit log's trigger queues for every key created, usage is
// flushed every millisecond for keys being verified, credits are
// spent (the group commit, on its own connection), and keys are updated.
// No write may fail, with "database is locked" or anything else: every
// write waits for SQLite's lock.
func TestConcurrentWritersNeverLocked(t *testing.T) {
	// Within one process no write may wait in SQLite's busy handler at
	// all: a short busy timeout makes a write that does fail at once,
	// instead of after five seconds of starvation.
	defer sqlite.SetBusyTimeout(250 * time.Millisecond)()
	s, _ := openTemp(t)
	ctx := t.Context()
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer rcv.Close()
	ws := s.Webhooks()
	if _, _, err := (&outbox.Service{Store: ws}).Create(ctx, outbox.NewEndpoint{URL: rcv.URL + "/hooks"}); err != nil {
		t.Fatal(err)
	}
	m, err := apikey.NewManager(s, apikey.Config{UsageFlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	paying, _, err := m.Create(ctx, apikey.CreateParams{Name: "paying", Credits: &apikey.Credits{Remaining: 1 << 40}})
	if err != nil {
		t.Fatal(err)
	}
	var tokens []string
	for i := range 4 {
		_, tok, err := m.Create(ctx, apikey.CreateParams{Name: fmt.Sprintf("used-%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, tok)
	}

	const (
		creators = 16
		run      = 2 * time.Second
	)
	var (
		stop                                atomic.Bool
		created, delivered, spent, verified atomic.Int64
		errMu                               sync.Mutex
		errs                                = map[string]int{}
		firstErr                            = map[string]error{}
	)
	fail := func(who string, err error) {
		errMu.Lock()
		defer errMu.Unlock()
		errs[who]++
		if firstErr[who] == nil {
			firstErr[who] = err
		}
	}
	var wg sync.WaitGroup
	for i := range creators {
		wg.Go(func() {
			for n := 0; !stop.Load(); n++ {
				k, _, err := m.Create(apikey.WithActor(ctx, "stress"), apikey.CreateParams{Name: fmt.Sprintf("c%d-%d", i, n), Owner: fmt.Sprintf("o%d", i%4)})
				if err != nil {
					fail("create", err)
					continue
				}
				created.Add(1)
				if n%8 == 0 {
					name := k.Name + "-renamed"
					if _, err := m.Update(ctx, k.ID, apikey.KeyUpdate{Name: &name}); err != nil {
						fail("update", err)
					}
				}
			}
		})
	}
	w := &outbox.Worker{Store: ws, Key: m.Get, Batch: 20, Lease: time.Minute}
	for range 2 {
		wg.Go(func() {
			for !stop.Load() {
				n, err := w.RunOnce(ctx)
				if err != nil {
					fail("webhook worker", err)
				}
				delivered.Add(int64(n))
				if n == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		})
	}
	for i := range 4 {
		wg.Go(func() {
			for !stop.Load() {
				if _, err := m.Verify(ctx, tokens[i]); err != nil {
					fail("verify", err)
				} else {
					verified.Add(1)
				}
				time.Sleep(200 * time.Microsecond) // leave the writers some CPU
			}
		})
	}
	wg.Go(func() { // usage flushes, which the Manager's own would hide
		for !stop.Load() {
			if err := m.FlushUsage(ctx); err != nil {
				fail("usage flush", err)
			}
			time.Sleep(time.Millisecond)
		}
	})
	for range 8 {
		wg.Go(func() {
			for !stop.Load() {
				if _, err := s.SpendCredits(ctx, apikey.SpendRequest{KeyID: paying.ID, Cost: 1, Now: time.Now()}); err != nil {
					fail("spend", err)
				} else {
					spent.Add(1)
				}
			}
		})
	}
	time.Sleep(run)
	stop.Store(true)
	wg.Wait()
	t.Logf("in %v: %d keys created, %d deliveries claimed, %d credits spent, %d verifications", run, created.Load(), delivered.Load(), spent.Load(), verified.Load())
	for who, n := range errs {
		locked := ""
		if strings.Contains(firstErr[who].Error(), "locked") {
			locked = " (SQLITE_BUSY)"
		}
		t.Errorf("%s failed %d times%s, first: %v", who, n, locked, firstErr[who])
	}
	if created.Load() == 0 || spent.Load() == 0 {
		t.Errorf("created %d keys and spent %d credits: the writers did not overlap", created.Load(), spent.Load())
	}
}

// TestWritesWaitForAnotherProcess: while another process holds SQLite's
// write lock for a while, every kind of write of the Store waits for it
// and succeeds: the busy timeout applies to each of its connections
// (the pool, the writes' own and the spends'), and writes queued behind
// the one that waits wait too.
func TestWritesWaitForAnotherProcess(t *testing.T) {
	s, path := openTemp(t)
	ctx := t.Context()
	m := newManager(t, s)
	k, _, err := m.Create(ctx, apikey.CreateParams{Name: "held", Credits: &apikey.Credits{Remaining: 10}})
	if err != nil {
		t.Fatal(err)
	}
	// The other process: a handle of its own on the file.
	other, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	const hold = 300 * time.Millisecond
	held := time.Now()
	writes := map[string]func() error{
		"create": func() error {
			_, _, err := m.Create(ctx, apikey.CreateParams{Name: "waits"})
			return err
		},
		"update": func() error {
			name := "renamed"
			_, err := m.Update(ctx, k.ID, apikey.KeyUpdate{Name: &name})
			return err
		},
		"spend": func() error {
			_, err := s.SpendCredits(ctx, apikey.SpendRequest{KeyID: k.ID, Cost: 1, Now: time.Now()})
			return err
		},
		"record usage": func() error {
			return s.RecordUsage(ctx, []apikey.UsageCount{{KeyID: k.ID, Bucket: time.Now().Truncate(time.Minute), Outcome: string(apikey.CodeValid), Count: 1}}, nil)
		},
		"put instance": func() error {
			return s.PutInstance(ctx, apikey.Instance{ID: "i1", Name: "one"}, time.Minute)
		},
		"claim deliveries": func() error {
			_, err := s.Webhooks().Claim(ctx, "w", time.Now(), time.Minute, 10)
			return err
		},
	}
	var wg sync.WaitGroup
	took := make(map[string]time.Duration)
	errs := make(map[string]error)
	var mu sync.Mutex
	for name, write := range writes {
		wg.Go(func() {
			err := write()
			mu.Lock()
			defer mu.Unlock()
			took[name], errs[name] = time.Since(held), err
		})
	}
	time.Sleep(hold)
	if _, err := conn.ExecContext(ctx, `COMMIT`); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for name := range writes {
		if errs[name] != nil {
			t.Errorf("%s while another process held the write lock: %v", name, errs[name])
		} else if took[name] < hold*9/10 {
			t.Errorf("%s returned after %v, before the other process let the lock go (%v)", name, took[name], hold)
		}
	}
}
