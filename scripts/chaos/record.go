package main

import (
	"slices"
	"sync"
	"time"
)

// outcome classifies one HTTP exchange.
type outcome int

const (
	fine        outcome = iota // an expected status
	unavailable                // 503
	serverError                // another status >= 500
	noAnswer                   // no response: refused, reset or timed out
	unexpected                 // a status below 500 that was not expected
)

// classify returns the outcome of an exchange that answered status (0
// for none) when one of want was expected.
func classify(status int, want ...int) outcome {
	switch {
	case status == 0:
		return noAnswer
	case slices.Contains(want, status):
		return fine
	case status == 503:
		return unavailable
	case status >= 500:
		return serverError
	default:
		return unexpected
	}
}

// failure is an exchange whose outcome was not fine, at the instant its
// outcome was known.
type failure struct {
	at   time.Time
	kind outcome
}

// probeResult is what one probe measured.
type probeResult struct {
	revoked  time.Time     // when the revoke on B returned
	warmed   bool          // A accepted the key twice before the revoke
	latency  time.Duration // last 200 from A after revoked; 0 if none
	accepted bool          // A accepted the key after the bound
	capped   bool          // A still accepted it when the watch ended
}

// recorder collects failures, counts of fine exchanges (per 100 ms) and
// probe results. It is safe for concurrent use.
type recorder struct {
	mu        sync.Mutex
	failures  []failure
	fineSlots map[int64]int // fine exchanges per 100 ms slot
	probes    []probeResult
}

func newRecorder() *recorder { return &recorder{fineSlots: map[int64]int{}} }

// slotOf is the 100 ms slot of t.
func slotOf(t time.Time) int64 { return t.UnixMilli() / 100 }

// exchange records one exchange that ended at.
func (r *recorder) exchange(at time.Time, o outcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if o == fine {
		r.fineSlots[slotOf(at)]++
		return
	}
	r.failures = append(r.failures, failure{at: at, kind: o})
}

// probe records a probe.
func (r *recorder) probe(p probeResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.probes = append(r.probes, p)
}

// cycle is one fault's run: a phase before, the fault, a phase after.
type cycle struct {
	variant, fault string
	storeDown      bool // the fault takes a store away from an instance

	begin      time.Time // the phase before starts
	faultStart time.Time
	faultEnd   time.Time // the harness starts undoing the fault
	restored   time.Time // the harness has undone it (the store is back)
	end        time.Time // the phase after ends
}

// result is the summary of a cycle.
type result struct {
	cycle
	requests     int // exchanges during the cycle
	serverErrors int // >= 500, except 503 while a store is down
	storeDown503 int // 503 while the fault takes a store down
	noAnswer     int
	unexpected   int
	// recovery is from faultEnd to the last failure; recovered is false
	// when failures went on until the last second of the cycle.
	recovery  time.Duration
	recovered bool

	probes   int // warmed probes revoked during the fault
	accepted int // probes of the whole cycle accepted after the bound
	capped   bool
	p50, p99 time.Duration
	max      time.Duration
}

// settle is how long the end of a cycle must be free of failures for the
// service to count as recovered.
const settle = time.Second

// summarize computes the result of c from what r recorded.
func (r *recorder) summarize(c cycle) result {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := result{cycle: c, recovered: true}
	for s, n := range r.fineSlots {
		if s >= slotOf(c.begin) && s < slotOf(c.end) {
			res.requests += n
		}
	}
	var last time.Time
	for _, f := range r.failures {
		if f.at.Before(c.begin) || !f.at.Before(c.end) {
			continue
		}
		res.requests++
		res.count(f, c)
		if !f.at.Before(c.faultEnd) && f.at.After(last) {
			last = f.at
		}
	}
	if !last.IsZero() {
		res.recovery = last.Sub(c.faultEnd)
		res.recovered = c.end.Sub(last) >= settle
	}
	var lat []time.Duration
	for _, p := range r.probes {
		if p.revoked.Before(c.begin) || !p.revoked.Before(c.end) {
			continue
		}
		if p.accepted {
			res.accepted++
		}
		if p.warmed && !p.revoked.Before(c.faultStart) && p.revoked.Before(c.faultEnd) {
			lat = append(lat, p.latency)
			res.capped = res.capped || p.capped
		}
	}
	res.probes = len(lat)
	res.p50, res.p99, res.max = percentile(lat, 50), percentile(lat, 99), percentile(lat, 100)
	return res
}

// count adds failure f to the counters of res.
func (res *result) count(f failure, c cycle) {
	switch f.kind {
	case unavailable:
		if c.storeDown && !f.at.Before(c.faultStart) && f.at.Before(c.restored) {
			res.storeDown503++
		} else {
			res.serverErrors++
		}
	case serverError:
		res.serverErrors++
	case noAnswer:
		res.noAnswer++
	case unexpected:
		res.unexpected++
	}
}

// percentile returns the p-th percentile of ds by the nearest-rank
// method (p = 100 is the maximum), or 0 for none. It sorts ds.
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	rank := (p*len(ds) + 99) / 100 // ceil(p/100 * n)
	return ds[max(rank, 1)-1]
}
