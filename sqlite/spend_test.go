package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/sqlite"
)

// TestSpendBatchIsolation: concurrent spends share transactions, yet a
// spend that fails (an unknown key) fails alone, and the others are exact.
func TestSpendBatchIsolation(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	m := newManager(t, s)
	k, _, err := m.Create(ctx, apikey.CreateParams{Name: "batch", Credits: &apikey.Credits{Remaining: 50}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	var (
		wg                sync.WaitGroup
		mu                sync.Mutex
		spent, refused    int
		unknownErrs, errs int
	)
	for i := range 200 {
		wg.Go(func() {
			id := k.ID
			if i%4 == 0 {
				id = "unknownKeyId"
			}
			res, err := s.SpendCredits(ctx, apikey.SpendRequest{KeyID: id, Cost: 1, Now: now})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil && id != k.ID:
				unknownErrs++
			case err != nil:
				errs++
				t.Errorf("spend on the known key: %v", err)
			case id != k.ID:
				t.Errorf("spend on an unknown key succeeded: %+v", res)
			case res.Spent:
				spent++
			default:
				refused++
			}
		})
	}
	wg.Wait()
	if spent != 50 || refused != 100 || unknownErrs != 50 {
		t.Errorf("spent %d, refused %d, unknown-key errors %d; want 50, 100, 50", spent, refused, unknownErrs)
	}
	got, err := m.Get(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Credits == nil || got.Credits.Remaining != 0 {
		t.Errorf("balance after the spends: %+v, want 0", got.Credits)
	}
	// A spend on an unknown key is refused as not found, batched or not.
	if _, err := s.SpendCredits(ctx, apikey.SpendRequest{KeyID: "unknownKeyId", Cost: 1, Now: now}); !errors.Is(err, apikey.ErrNotFound) {
		t.Errorf("a spend on an unknown key returns %v, want ErrNotFound", err)
	}
}

// TestSpendBatchManyKeys: batches over many keys, which read and write
// their balances in one statement per table, are exact: keys without an
// owner, keys sharing an owner's balance, an owner without a row, and
// unknown keys, spent from at once.
func TestSpendBatchManyKeys(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	m := newManager(t, s)
	if _, err := m.SetOwner(ctx, "shared", apikey.OwnerUpdate{Credits: &apikey.Credits{Remaining: 30}}); err != nil {
		t.Fatal(err)
	}
	type target struct {
		id, owner string
		want      int // spends that succeed
	}
	var targets []target
	for i := range 24 {
		owner, credits, want := "", int64(5+i), 5+i
		switch {
		case i%3 == 1:
			owner, credits, want = "shared", 1000, 0 // counted over the owner below
		case i%3 == 2:
			owner = "norow" // an owner without a record: the key's balance alone
		}
		k, _, err := m.Create(ctx, apikey.CreateParams{Name: "many", Owner: owner, Credits: &apikey.Credits{Remaining: credits}})
		if err != nil {
			t.Fatal(err)
		}
		targets = append(targets, target{k.ID, owner, want})
	}
	targets = append(targets, target{id: "unknownKeyId"})
	const perKey = 40
	now := time.Now().UTC()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		spent  = map[string]int{}
		shared int
	)
	for range perKey {
		for _, tg := range targets {
			wg.Go(func() {
				res, err := s.SpendCredits(ctx, apikey.SpendRequest{KeyID: tg.id, Owner: tg.owner, Cost: 1, Now: now})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case tg.id == "unknownKeyId":
					if !errors.Is(err, apikey.ErrNotFound) {
						t.Errorf("spend on an unknown key: %+v, %v; want ErrNotFound", res, err)
					}
				case err != nil:
					t.Errorf("spend on %s: %v", tg.id, err)
				case res.Spent:
					spent[tg.id]++
					if tg.owner == "shared" {
						shared++
					}
				}
			})
		}
	}
	wg.Wait()
	for _, tg := range targets[:len(targets)-1] {
		k, err := m.Get(ctx, tg.id)
		if err != nil {
			t.Fatal(err)
		}
		start := int64(1000)
		if tg.owner != "shared" {
			start = int64(tg.want)
			if spent[tg.id] != tg.want {
				t.Errorf("key %s spent %d times, want %d", tg.id, spent[tg.id], tg.want)
			}
		}
		if got := k.Credits.Remaining; got != start-int64(spent[tg.id]) {
			t.Errorf("key %s: %d left after %d spends of %d, want %d", tg.id, got, spent[tg.id], start, start-int64(spent[tg.id]))
		}
	}
	o, err := m.Owner(ctx, "shared")
	if err != nil {
		t.Fatal(err)
	}
	if shared != 30 || o.Credits.Remaining != 0 {
		t.Errorf("the shared owner's keys spent %d times, %d left; want 30, 0", shared, o.Credits.Remaining)
	}
}

// TestSpendLeavesPoolSync: a batch of spends commits with
// synchronous=NORMAL, on a connection of its own with Open and on a
// borrowed connection with New, and every connection of the pool is at
// FULL afterwards, so that the other writes still sync the log at each
// commit. The New store's pool has one connection, which the spends must
// not wait for while they hold it.
func TestSpendLeavesPoolSync(t *testing.T) {
	ctx := context.Background()
	opened, _ := openTemp(t)
	path := filepath.Join(t.TempDir(), "new.db")
	db, err := sql.Open("sqlite", path+"?_txlock=immediate&_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	// One connection: a batch holds it, so nothing of the spends may wait
	// for another (a statement prepared on the pool mid-batch would).
	db.SetMaxOpenConns(1)
	newed := sqlite.New(db)
	defer newed.Close()
	if err := newed.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*sqlite.Store{"Open": opened, "New": newed} {
		t.Run(name, func(t *testing.T) {
			m := newManager(t, s)
			k, _, err := m.Create(ctx, apikey.CreateParams{Name: "sync", Credits: &apikey.Credits{Remaining: 1000}})
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for range 64 {
				wg.Go(func() {
					if _, err := s.SpendCredits(ctx, apikey.SpendRequest{KeyID: k.ID, Cost: 1, Now: time.Now()}); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if got, err := m.Get(ctx, k.ID); err != nil || got.Credits.Remaining != 1000-64 {
				t.Fatalf("balance after 64 spends: %+v, %v; want 936", got, err)
			}
			// Hold every connection of the pool at once and read its
			// setting.
			db := s.DB()
			n := db.Stats().OpenConnections
			if n == 0 {
				t.Fatal("no open connection after the spends")
			}
			conns := make([]*sql.Conn, 0, n)
			defer func() {
				for _, c := range conns {
					c.Close()
				}
			}()
			for range n {
				c, err := db.Conn(ctx)
				if err != nil {
					t.Fatal(err)
				}
				conns = append(conns, c)
				var sync int
				if err := c.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil {
					t.Fatal(err)
				}
				if sync != 2 {
					t.Errorf("a connection of the pool has synchronous=%d after the spends, want 2 (FULL)", sync)
				}
			}
		})
	}
}

// BenchmarkSpendBatch: 32 clients spending 1 credit at a time on keys
// without an owner, all on one key and spread over 32, straight on the
// Store (the batches of SpendCredits, without the Manager).
func BenchmarkSpendBatch(b *testing.B) {
	for _, n := range []int{1, 32} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			s, _ := openTemp(b)
			ctx := context.Background()
			m := newManager(b, s)
			ids := make([]string, n)
			for i := range ids {
				k, _, err := m.Create(ctx, apikey.CreateParams{Name: "spend", Credits: &apikey.Credits{Remaining: 1 << 60}})
				if err != nil {
					b.Fatal(err)
				}
				ids[i] = k.ID
			}
			var next atomic.Int64
			b.SetParallelism(16) // 32 clients on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := ids[int(next.Add(1))%n]
					if _, err := s.SpendCredits(ctx, apikey.SpendRequest{KeyID: id, Cost: 1, Now: time.Now()}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
