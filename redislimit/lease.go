package redislimit

import (
	"context"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// Leases (Config.Lease) let a hot bucket's decisions skip Redis. A
// decision in Redis may take, besides its own cost, a few more cells of
// the bucket for this instance: Redis counts them as spent at once, and
// the next requests of the bucket on this instance take them in memory,
// for at most the lease's duration, after which what is left is forfeited.
//
// A lease never lets more through than the bucket allows. In Redis, the
// leased cells are counted as if they all arrived at the end of the lease,
// however early they are taken: the bucket's theoretical arrival time
// becomes at least "now + Lease" plus the cells' emission time, and the
// lease is granted only if that still fits the burst. Every cell let
// through in a window of the limit's period was therefore counted in
// Redis at a time whose count the window's own bound covers, so that the
// generic cell rate algorithm's bound (at most Limit per Period, plus the
// burst, in any window) holds for leased and unleased requests together,
// across instances. The price is paid in capacity, never in excess: a
// lease holds a Lease's worth of the bucket's time until it ends, and
// cells not used by then are forfeited (the bucket refuses a little early
// rather than late).
//
// To keep that price small, a lease is granted only where it is cheap:
//   - never more cells than the bucket refills in Lease (a forfeit costs
//     at most Lease of the bucket's time), so a slow limit, such as 100 an
//     hour, is never leased and its decisions stay exact one by one;
//   - never more than a sixteenth of the room the bucket has left, so a
//     bucket near its limit is not leased either;
//   - never more than this instance's recent rate of the bucket would use
//     in two Leases, nor more than four times the cells it spent here since
//     its last lease, so a quiet bucket (less than a cell a Lease here) is
//     not leased, and a lease grows to a busy bucket's needs in a few
//     trips.

// leaseShare divides a bucket's room: a lease takes at most 1/leaseShare
// of what the bucket has left.
const leaseShare = 16

// minLease is the smallest lease worth a cell of bookkeeping: a request
// that would lease fewer cells decides in Redis alone.
const minLease = 2

// maxLease bounds one lease, whatever the rate.
const maxLease = 1 << 20

// sweepEvery is how often, at most, the lease table drops the buckets that
// have been idle for idleAfter.
const (
	sweepEvery = 10 * time.Second
	idleAfter  = 10 * time.Second
)

// leaseScript is redis_rate's GCRA (the same key and value, so that
// decisions with and without leases share a bucket) with a lease: after
// admitting cost, it takes up to ARGV[5] more cells for the caller, counted
// as if they arrived ARGV[6] seconds from now (see above). It answers
// {allowed, leased, retry_after, reset_after}.
var leaseScript = redis.NewScript(`
redis.replicate_commands()

local key = KEYS[1]
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local period = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local want = tonumber(ARGV[5])
local hold = tonumber(ARGV[6])

local emission_interval = period / rate
local burst_offset = emission_interval * burst

-- The time as redis_rate counts it: seconds since 2017-01-01.
local jan_1_2017 = 1483228800
local now = redis.call("TIME")
now = (now[1] - jan_1_2017) + (now[2] / 1000000)

local tat = redis.call("GET", key)
if not tat then
  tat = now
else
  tat = tonumber(tat)
end
tat = math.max(tat, now)

local new_tat = tat + emission_interval * cost
local diff = now - (new_tat - burst_offset)
if diff < 0 then
  return {0, 0, tostring(-diff), tostring(tat - now)}
end

local leased = 0
if want > 0 then
  local held = math.max(new_tat, now + hold)
  local room = math.floor((now + burst_offset - held) / emission_interval)
  leased = math.min(want, math.floor(room / tonumber(ARGV[7])), math.floor(hold / emission_interval))
  if leased >= tonumber(ARGV[8]) then
    new_tat = held + emission_interval * leased
  else
    leased = 0
  end
end

local reset_after = new_tat - now
if reset_after > 0 then
  redis.call("SET", key, new_tat, "EX", math.ceil(reset_after))
end
return {1, leased, "-1", tostring(reset_after)}
`)

// leases is a Limiter's table of the cells it holds, by bucket.
type leases struct {
	hold  time.Duration
	base  time.Time // the origin of now's monotonic readings
	table sync.Map  // bucket name → *lease
	swept atomic.Int64
	local atomic.Int64 // decisions made from leases
}

// now reads the monotonic clock, in nanoseconds since l.base.
func (l *leases) now() int64 { return int64(time.Since(l.base)) }

// lease is what a Limiter holds of one bucket.
type lease struct {
	mu    sync.Mutex
	limit redis_rate.Limit // the limit the cells were taken under
	cur   grant            // spent first
	next  grant            // the top-up, spent once cur has ended
	// What Redis said at the last trip: the room left beyond the leases,
	// and when the bucket will be full again (on the monotonic clock).
	room int64
	full int64
	// The rate estimate: cells spent on this instance since since, the
	// start of the last trip that asked for a lease.
	since, used int64
	tripping    bool  // a trip that leases is on its way
	dead        bool  // Reset: nothing may be leased into this entry
	lastUse     int64 // for the sweep
}

// grant is one lease: cells that may be let through until end.
type grant struct{ cells, end int64 }

// take spends cost from the grants valid at now, if they hold it; e.mu
// is held.
func (e *lease) take(now, cost int64) bool {
	if e.cur.cells == 0 || now >= e.cur.end {
		e.cur, e.next = e.next, grant{}
		if now >= e.cur.end {
			e.cur = grant{}
		}
	}
	if e.cur.cells == 0 || e.cur.cells < cost {
		// Nothing held, or cur cannot hold cost alone: next may help, but
		// cur ends first, so keep the rule simple and decide in Redis. (A
		// cost of 0 is answered here while cells are held.)
		return false
	}
	e.cur.cells -= cost
	e.used += cost
	e.lastUse = now
	return true
}

// growth bounds a lease to this many times the cells spent here since the
// last trip that leased, so that a lease grows from a few cells to what a
// busy bucket needs in a few trips, and two requests at once of a quiet
// bucket lease a few cells at most.
const growth = 4

// want returns how many cells to ask for at a trip starting at now, and
// starts a new estimate; e.mu is held. It asks for what the rate since
// the last such trip spends in two Leases, at most growth times the cells
// it counted: a bucket that spends fewer than one cell a Lease here asks
// for none.
func (e *lease) want(now int64, hold time.Duration) int64 {
	used, dt := e.used, now-e.since
	e.since, e.used = now, 0
	if used == 0 || dt <= 0 {
		return 0
	}
	w := min(float64(used)*2*float64(hold)/float64(dt), float64(used*growth), maxLease)
	if w < minLease {
		return 0
	}
	return int64(w)
}

// startTrip returns how many cells the trip starting at now may ask for:
// none while another trip that leases is on its way or e is dead, else
// want's answer, and then the trip is e's one trip that leases
// (e.tripping, cleared by tripFor); e.mu is held.
func (e *lease) startTrip(now int64, hold time.Duration) int64 {
	if e.tripping || e.dead {
		return 0
	}
	w := e.want(now, hold)
	e.tripping = w > 0
	return w
}

// held returns the cells e holds at now; e.mu is held.
func (e *lease) held(now int64) int64 {
	n := int64(0)
	for _, g := range [...]grant{e.cur, e.next} {
		if now < g.end {
			n += g.cells
		}
	}
	return n
}

// result is the outcome of a spend from e at now; e.mu is held. Remaining
// is an estimate: what Redis left at the last trip, with nothing refilled
// since nor spent elsewhere, plus what e holds.
func (e *lease) result(limit apikey.RateLimit, burst, now int64) apikey.LimitResult {
	return apikey.LimitResult{
		Name:      limit.Name,
		Limit:     limit.Limit,
		Period:    limit.Period,
		Remaining: min(e.room+e.held(now), burst),
		Reset:     time.Duration(max(e.full-now, 0)),
		Allowed:   true,
	}
}

// allowLeased is Allow with leases: from the cells held of bucket when they
// hold cost, else in Redis, leasing more when the bucket's rate here is
// worth it.
func (l *Limiter) allowLeased(ctx context.Context, bucket string, limit apikey.RateLimit, rl redis_rate.Limit, cost int64) (apikey.LimitResult, error) {
	ls := l.leases
	v, ok := ls.table.Load(bucket)
	if !ok {
		v, _ = ls.table.LoadOrStore(bucket, &lease{limit: rl, since: ls.now()})
	}
	e := v.(*lease)
	e.mu.Lock()
	// The clock is read under the lock: a cell is let through at the
	// instant it is taken, which must come before its grant's end.
	now := ls.now()
	if e.limit != rl {
		// The limit changed: what was taken under the old one is forfeited.
		e.limit, e.cur, e.next = rl, grant{}, grant{}
		e.since, e.used = now, 0
	}
	if e.take(now, cost) {
		ls.local.Add(1)
		r := e.result(limit, int64(rl.Burst), now)
		var want int64
		if e.next.cells == 0 && e.cur.cells < e.used {
			// More of what was leased is spent than is left: top up in the
			// background while the rest is taken.
			want = e.startTrip(now, ls.hold)
		}
		e.mu.Unlock()
		if want > 0 {
			go l.topUp(bucket, e, rl, want)
		}
		return r, nil
	}
	want := e.startTrip(now, ls.hold)
	e.used += cost // counted whatever Redis says: the demand is the rate
	e.lastUse = now
	e.mu.Unlock()
	l.maybeSweep(now)

	r, leased, err := l.tripFor(ctx, bucket, e, limit, rl, cost, want)
	if leased > 0 {
		r.Remaining = min(r.Remaining+leased, int64(rl.Burst))
	}
	return r, err
}

// tripFor decides cost in Redis for e and leases up to want cells; a trip
// that asks for a lease is the entry's one trip that does (e.tripping).
func (l *Limiter) tripFor(ctx context.Context, bucket string, e *lease, limit apikey.RateLimit, rl redis_rate.Limit, cost, want int64) (r apikey.LimitResult, leased int64, err error) {
	if want > 0 {
		defer func() {
			e.mu.Lock()
			e.tripping = false
			e.mu.Unlock()
		}()
	}
	start := l.leases.now()
	r, leased, err = l.trip(ctx, bucket, limit, rl, cost, want)
	if err != nil {
		return r, 0, err
	}
	e.mu.Lock()
	leased = e.landed(rl, start, l.leases.hold, leased, r.Remaining, start+int64(r.Reset))
	e.mu.Unlock()
	return r, leased, nil
}

// landed records the answer of a trip that started at start, and returns
// the cells it leased that e keeps; e.mu is held.
func (e *lease) landed(rl redis_rate.Limit, start int64, hold time.Duration, leased, room, full int64) int64 {
	if e.limit != rl || e.dead {
		return 0 // changed or reset meanwhile: forfeit
	}
	e.room, e.full = room, full
	if leased == 0 {
		return 0
	}
	g := grant{cells: leased, end: start + int64(hold)}
	switch {
	case e.cur.cells == 0 || start >= e.cur.end:
		e.cur = g
	case e.next.cells > 0 && start < e.next.end:
		// A foreground trip while next was held (cur could not cover a
		// cost): both end at the earlier end.
		e.next = grant{cells: e.next.cells + g.cells, end: min(e.next.end, g.end)}
	default:
		e.next = g
	}
	return leased
}

// topUp leases want more cells of bucket for e, in the background.
func (l *Limiter) topUp(bucket string, e *lease, rl redis_rate.Limit, want int64) {
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	_, _, _ = l.tripFor(ctx, bucket, e, apikey.RateLimit{Limit: int64(rl.Rate), Period: rl.Period}, rl, 0, want)
}

// trip decides cost in Redis and leases up to want more cells. It returns
// the decision (its Remaining without the lease) and the cells leased.
func (l *Limiter) trip(ctx context.Context, bucket string, limit apikey.RateLimit, rl redis_rate.Limit, cost, want int64) (apikey.LimitResult, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	v, err := leaseScript.Run(ctx, l.client, []string{redisRatePrefix + l.prefix + bucket},
		rl.Burst, rl.Rate, rl.Period.Seconds(), cost, want, l.leases.hold.Seconds(), leaseShare, minLease).Slice()
	if err != nil {
		return apikey.LimitResult{}, 0, wrap(err)
	}
	if len(v) != 4 {
		return apikey.LimitResult{}, 0, wrap(errUnexpected)
	}
	allowed, _ := v[0].(int64)
	leased, _ := v[1].(int64)
	retry, err1 := parseSeconds(v[2])
	reset, err2 := parseSeconds(v[3])
	if err1 != nil || err2 != nil || leased < 0 {
		return apikey.LimitResult{}, 0, wrap(errUnexpected)
	}
	return result(limit, rl, allowed == 1, 0, retry, reset), leased, nil
}

// forfeit drops what l holds of bucket, for Reset: the entry is dead, so
// that a trip on its way, counted in the bucket as it was, leases nothing
// into it, and the next request makes a new one.
func (ls *leases) forfeit(bucket string) {
	v, ok := ls.table.LoadAndDelete(bucket)
	if !ok {
		return
	}
	e := v.(*lease)
	e.mu.Lock()
	e.dead, e.cur, e.next = true, grant{}, grant{}
	e.mu.Unlock()
}

// maybeSweep drops, at most every sweepEvery, the buckets idle for
// idleAfter: what they held has ended long ago.
func (l *Limiter) maybeSweep(now int64) {
	ls := l.leases
	last := ls.swept.Load()
	if now-last < int64(sweepEvery) || !ls.swept.CompareAndSwap(last, now) {
		return
	}
	go ls.table.Range(func(k, v any) bool {
		e := v.(*lease)
		e.mu.Lock()
		idle := !e.tripping && now-e.lastUse > max(int64(idleAfter), 2*int64(ls.hold))
		e.mu.Unlock()
		if idle {
			ls.table.CompareAndDelete(k, v)
		}
		return true
	})
}

// Leased reports what l holds in leases (Config.Lease): how many buckets
// have cells leased here that have not ended, and how many cells. It is
// zero without leases. It visits every bucket: call it at a metrics
// scrape, not per request.
func (l *Limiter) Leased() (buckets int, cells int64) {
	if l.leases == nil {
		return 0, 0
	}
	l.leases.table.Range(func(_, v any) bool {
		e := v.(*lease)
		e.mu.Lock()
		if n := e.held(l.leases.now()); n > 0 {
			buckets++
			cells += n
		}
		e.mu.Unlock()
		return true
	})
	return buckets, cells
}

// LeasedDecisions reports how many decisions l has made from leases, in
// memory, since it was made: the requests that made no trip to Redis. It
// is zero without leases.
func (l *Limiter) LeasedDecisions() int64 {
	if l.leases == nil {
		return 0
	}
	return l.leases.local.Load()
}

// parseSeconds reads a script's number of seconds, sent as a string.
func parseSeconds(v any) (time.Duration, error) {
	s, _ := v.(string)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, errUnexpected
	}
	return time.Duration(f * float64(time.Second)), nil
}
