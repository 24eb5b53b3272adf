package apikey

import (
	"context"
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// MemoryLimiter is the in-process Limiter: the generic cell rate algorithm
// (GCRA) over counters kept in memory, one theoretical arrival time per
// bucket. It is the Manager's default, exact for one process; the
// instances of a service that share their limits need a shared Limiter
// (Redis) instead. Its semantics are those of go-redis/redis_rate's AllowN,
// so that both limiters answer alike:
//
//   - each unit of cost moves the bucket's theoretical arrival time (TAT)
//     Period/Limit later (the emission interval);
//   - a request passes when the new TAT is at most Burst emission intervals
//     ahead of now; a refused request changes nothing;
//   - Remaining is how many more units would pass now, Reset how long
//     until the TAT is reached (the bucket full again), and RetryAfter,
//     when refused, how long until this request would pass.
//
// Buckets that are full again carry no information and are evicted. Allow
// does not allocate, except to remember a bucket it has not seen (or has
// evicted); it updates a bucket with compare-and-swap, and the Manager
// keeps the buckets of a cached key at hand, so that its requests hash
// nothing and take no lock. A MemoryLimiter is safe for concurrent use; its zero value is
// not usable: create one with NewMemoryLimiter.
type MemoryLimiter struct {
	now    func() time.Time
	seed   maphash.Seed
	shards [limiterShards]limiterShard
}

const (
	limiterShards = 64
	// sweepEvery is how many new buckets a shard takes between two sweeps
	// of its full buckets.
	sweepEvery = 1024
)

type limiterShard struct {
	mu    sync.Mutex
	cells map[string]*limitCell
	added int
	_     [40]byte // keep shards on separate cache lines
}

// limitCell holds the TAT of one bucket, in Unix nanoseconds, updated
// with compare-and-swap: a request takes no lock once it holds the cell
// (the Manager keeps the cells of a key's limits in its cache entry). A
// sweep marks the cells it drops dead, so that their holders fetch a
// fresh one.
type limitCell struct {
	tat atomic.Int64
}

// deadTAT marks a cell dropped by a sweep.
const deadTAT = math.MinInt64

var _ Limiter = (*MemoryLimiter)(nil)

// NewMemoryLimiter returns an empty MemoryLimiter that reads time from now;
// nil means time.Now.
func NewMemoryLimiter(now func() time.Time) *MemoryLimiter {
	if now == nil {
		now = time.Now
	}
	l := &MemoryLimiter{now: now, seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].cells = map[string]*limitCell{}
	}
	return l
}

// Allow implements Limiter. It never fails; ctx is not consulted. A
// negative cost is treated as zero.
func (ml *MemoryLimiter) Allow(_ context.Context, bucket string, l RateLimit, cost int64) (LimitResult, error) {
	g := newGCRA(&l)
	return ml.allowCell(nil, nil, bucket, &g, cost, ml.now().UnixNano()), nil
}

// allowCell applies cost to bucket, whose limit is g's, at now in Unix
// nanoseconds (the Manager passes the time of its own clock, read once per
// request, when the limiter is its default one). The cell of the bucket is
// held in slot, when slot is not nil: it is taken from there (and stored
// there when fetched), so that a request on a known bucket hashes nothing
// and takes no lock; offer, when not nil, is the cell to keep for the
// bucket when the limiter has none (see cell).
func (ml *MemoryLimiter) allowCell(slot *atomic.Pointer[limitCell], offer *limitCell, bucket string, g *gcraLimit, cost, now int64) LimitResult {
	cost = max(cost, 0)
	for {
		var c *limitCell
		if slot != nil {
			c = slot.Load()
		}
		if c == nil {
			c = ml.cell(bucket, now, offer)
			if slot != nil {
				slot.Store(c)
			}
		}
		for {
			tat := c.tat.Load()
			if tat == deadTAT {
				break // swept: fetch a fresh cell
			}
			res, newTAT := g.apply(tat, now, cost)
			if !res.Allowed || cost == 0 || newTAT == tat || c.tat.CompareAndSwap(tat, newTAT) {
				return res
			}
		}
		if slot != nil {
			slot.CompareAndSwap(c, nil)
		}
	}
}

// cell returns the cell of bucket. When there is none it keeps offer, a
// cell that its caller holds (in a cache entry) and no other bucket uses,
// unless offer is nil or a sweep has marked it dead, in which case it
// makes one.
func (ml *MemoryLimiter) cell(bucket string, now int64, offer *limitCell) *limitCell {
	sh := &ml.shards[maphash.String(ml.seed, bucket)%limiterShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	c := sh.cells[bucket]
	if c == nil {
		sh.added++
		if sh.added >= sweepEvery {
			sh.sweep(now)
		}
		c = offer
		if c == nil || c.tat.Load() == deadTAT {
			c = new(limitCell)
		}
		sh.cells[bucket] = c
	}
	return c
}

// sweep drops the buckets whose TAT has passed: they are full again, as a
// bucket never seen is. A cell is dropped only if it can be marked dead
// before a concurrent request moves its TAT. The caller holds sh.mu.
func (sh *limiterShard) sweep(now int64) {
	sh.added = 0
	for b, c := range sh.cells {
		if tat := c.tat.Load(); tat <= now && c.tat.CompareAndSwap(tat, deadTAT) {
			delete(sh.cells, b)
		}
	}
}

// Len returns the number of buckets held, for tests of eviction.
func (ml *MemoryLimiter) Len() int {
	n := 0
	for i := range ml.shards {
		sh := &ml.shards[i]
		sh.mu.Lock()
		n += len(sh.cells)
		sh.mu.Unlock()
	}
	return n
}

// Sweep drops every bucket that is full again at the limiter's current
// time. Allow sweeps a shard by itself every so many new buckets; Sweep is
// for callers that want memory back sooner.
func (ml *MemoryLimiter) Sweep() {
	now := ml.now().UnixNano()
	for i := range ml.shards {
		sh := &ml.shards[i]
		sh.mu.Lock()
		sh.sweep(now)
		sh.mu.Unlock()
	}
}

// gcraLimit is a RateLimit with the constants of its GCRA worked out
// once: the Manager keeps one per limit of a cached key, so that a request
// divides once, for Remaining, and converts nothing else.
type gcraLimit struct {
	limit       *RateLimit
	emission    float64 // Period/Limit, in nanoseconds
	burstOffset int64   // emission × EffectiveBurst, truncated
	unit        int64   // emission rounded: what a cost of 1 moves the TAT
	valid       bool    // Limit and Period are positive
}

func newGCRA(l *RateLimit) gcraLimit {
	g := gcraLimit{limit: l}
	if l.Limit <= 0 || l.Period <= 0 {
		return g // an invalid limit never grants
	}
	g.valid = true
	g.emission = float64(l.Period) / float64(l.Limit)
	g.burstOffset = int64(g.emission * float64(l.EffectiveBurst()))
	g.unit = int64(math.Round(g.emission))
	return g
}

// apply applies cost to a bucket whose TAT is tat (zero when unknown) at
// now, all in nanoseconds, and returns the outcome and the new TAT.
func (g *gcraLimit) apply(tat, now, cost int64) (LimitResult, int64) {
	l := g.limit
	res := LimitResult{Name: l.Name, Limit: l.Limit, Period: l.Period}
	if !g.valid {
		return res, tat
	}
	inc := g.unit
	if cost != 1 {
		inc = int64(math.Round(g.emission * float64(cost)))
	}
	tat = max(tat, now)
	newTAT := satAdd(tat, inc)
	allowAt := newTAT - g.burstOffset
	diff := now - allowAt
	if diff < 0 {
		res.RetryAfter = time.Duration(-diff)
		res.Reset = time.Duration(tat - now)
		return res, tat // Remaining 0, as redis_rate answers
	}
	res.Allowed = true
	res.Remaining = int64(float64(diff) / g.emission)
	res.Reset = time.Duration(newTAT - now)
	return res, newTAT
}

func satAdd(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
