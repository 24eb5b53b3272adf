package apikey

import (
	"context"
	"sort"
	"strings"
	"sync"
	"time"
)

// UsageCount is the number of verifications of one key with one outcome in
// one minute.
type UsageCount struct {
	KeyID string `json:"key_id"`
	// Bucket is the start of the minute (or hour, from Manager.Usage), UTC.
	Bucket time.Time `json:"bucket"`
	// Outcome is a Code: CodeValid, CodeInvalidKey (the id exists but the
	// secret was wrong), CodeKeyExpired, CodeKeyRevoked, CodeKeyDisabled,
	// or CodeValidPrevious (a valid use of the previous secret during a
	// grace window).
	Outcome string `json:"outcome"`
	Count   int64  `json:"count"`
}

// DefaultUsageFlushInterval is how often a Manager writes usage by default:
// LastUsedAt is accurate to this interval.
const DefaultUsageFlushInterval = 10 * time.Second

// Outcomes counted by usage tracking, in the order of usageCell.counts.
var usageOutcomes = [...]Code{CodeValid, CodeInvalidKey, CodeKeyExpired, CodeKeyRevoked, CodeKeyDisabled, CodeValidPrevious}

const (
	useValid = iota
	useInvalid
	useExpired
	useRevoked
	useDisabled
	usePrevious
)

// usageCell holds the usage of one key since the last flush. Cache entries
// point at their key's cell, so recording a cache hit takes only that
// key's lock: no map lookup, no shared lock.
type usageCell struct {
	id     string
	mu     sync.Mutex
	minute int64                     // the minute counts belong to (Unix minutes)
	counts [len(usageOutcomes)]int64 // for minute
	spill  []UsageCount              // earlier minutes, not yet flushed
	last   time.Time                 // latest valid use, not yet flushed
	prev   time.Time                 // latest valid use of the previous secret, not yet flushed
	dead   bool                      // removed from the tracker: use a fresh cell
}

// usageTracker finds the cell of each key.
type usageTracker struct {
	cells sync.Map // id -> *usageCell
}

func newUsageTracker() *usageTracker { return &usageTracker{} }

// cell returns the live cell of id, creating it if needed.
func (u *usageTracker) cell(id string) *usageCell {
	if c, ok := u.cells.Load(id); ok {
		return c.(*usageCell)
	}
	c, _ := u.cells.LoadOrStore(id, &usageCell{id: id})
	return c.(*usageCell)
}

// record counts one verification of the cell's key with the given outcome.
func (u *usageTracker) record(c *usageCell, outcome int, now time.Time) {
	for {
		c.mu.Lock()
		if !c.dead {
			break
		}
		c.mu.Unlock()
		c = u.cell(c.id)
	}
	if minute := now.Unix() / 60; minute != c.minute {
		c.spillLocked()
		c.minute = minute
	}
	c.counts[outcome]++
	if outcome == useValid && now.After(c.last) {
		c.last = now
	} else if outcome == usePrevious && now.After(c.prev) {
		c.prev = now
	}
	c.mu.Unlock()
}

// spillLocked moves the counts of c.minute to c.spill.
func (c *usageCell) spillLocked() {
	for i, n := range c.counts {
		if n > 0 {
			c.spill = append(c.spill, UsageCount{KeyID: c.id, Bucket: time.Unix(c.minute*60, 0).UTC(), Outcome: string(usageOutcomes[i]), Count: n})
			c.counts[i] = 0
		}
	}
}

// take empties the tracker and returns what it held. Cells that recorded
// nothing since the previous take are dropped, so memory follows the keys
// in use, not every key ever verified.
func (u *usageTracker) take() ([]UsageCount, map[string]time.Time) {
	var counts []UsageCount
	last := map[string]time.Time{}
	u.cells.Range(func(k, v any) bool {
		c := v.(*usageCell)
		c.mu.Lock()
		c.spillLocked()
		if len(c.spill) == 0 && c.last.IsZero() && c.prev.IsZero() {
			c.dead = true
			u.cells.Delete(k)
		}
		counts = append(counts, c.spill...)
		if !c.last.IsZero() {
			last[c.id] = c.last
		}
		if !c.prev.IsZero() {
			last[PreviousSubject(c.id)] = c.prev
		}
		c.spill, c.last, c.prev = nil, time.Time{}, time.Time{}
		c.mu.Unlock()
		return true
	})
	return counts, last
}

// putBack returns unwritten usage after a failed flush, so that it is
// written with the next one.
func (u *usageTracker) putBack(counts []UsageCount, last map[string]time.Time) {
	for _, uc := range counts {
		u.withCell(uc.KeyID, func(c *usageCell) { c.spill = append(c.spill, uc) })
	}
	for id, t := range last {
		if key, ok := strings.CutPrefix(id, PreviousSubject("")); ok {
			u.withCell(key, func(c *usageCell) {
				if t.After(c.prev) {
					c.prev = t
				}
			})
			continue
		}
		u.withCell(id, func(c *usageCell) {
			if t.After(c.last) {
				c.last = t
			}
		})
	}
}

func (u *usageTracker) withCell(id string, f func(*usageCell)) {
	for {
		c := u.cell(id)
		c.mu.Lock()
		if !c.dead {
			f(c)
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
	}
}

// FlushUsage writes the usage recorded since the last flush: per-minute
// counters and last-used times, in one store call. The Manager flushes on
// its own every UsageFlushInterval and on Close; call FlushUsage to write
// sooner. On failure the usage is kept for the next flush.
func (m *Manager) FlushUsage(ctx context.Context) error {
	if m.usage == nil {
		return nil
	}
	counts, last := m.usage.take()
	if len(counts) == 0 && len(last) == 0 {
		return nil
	}
	if err := m.store.RecordUsage(ctx, counts, last); err != nil {
		m.usage.putBack(counts, last)
		return unavailable("record usage", err)
	}
	return nil
}

// Granularity is the bucket size of Manager.Usage.
type Granularity string

// Usage granularities.
const (
	ByMinute Granularity = "minute"
	ByHour   Granularity = "hour"
	// ByDay buckets by UTC day.
	ByDay Granularity = "day"
)

// Usage returns the verification counts of one key between from
// (inclusive) and to (exclusive), by minute, hour or UTC day, oldest
// first, at most 31 days at a time. Both
// bounds must be ValidTime. Counts not yet flushed are not included.
func (m *Manager) Usage(ctx context.Context, id string, from, to time.Time, g Granularity) ([]UsageCount, error) {
	if !ValidID(id) {
		return nil, ErrNotFound
	}
	if g == "" {
		g = ByMinute
	}
	var bucket int64 // seconds
	switch g {
	case ByMinute:
		bucket = 60
	case ByHour:
		bucket = 3600
	case ByDay:
		bucket = 86400
	default:
		return nil, invalid("granularity", "must be minute, hour or day")
	}
	if err := CheckTime("from", from); err != nil {
		return nil, err
	}
	if err := CheckTime("to", to); err != nil {
		return nil, err
	}
	if !from.Before(to) {
		return nil, invalid("from", "must be before to")
	}
	if to.Sub(from) > 31*24*time.Hour {
		return nil, invalid("to", "the range may span at most 31 days")
	}
	rows, err := m.store.Usage(ctx, id, from.UTC(), to.UTC())
	if err != nil {
		return nil, m.storeErr("usage", err)
	}
	if g == ByMinute {
		return rows, nil
	}
	type k struct {
		start   int64 // Unix seconds
		outcome string
	}
	sum := map[k]int64{}
	for _, r := range rows {
		s := r.Bucket.Unix()
		s -= ((s % bucket) + bucket) % bucket
		sum[k{s, r.Outcome}] += r.Count
	}
	out := make([]UsageCount, 0, len(sum))
	for key, n := range sum {
		out = append(out, UsageCount{KeyID: id, Bucket: time.Unix(key.start, 0).UTC(), Outcome: key.outcome, Count: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Bucket.Equal(out[j].Bucket) {
			return out[i].Bucket.Before(out[j].Bucket)
		}
		return out[i].Outcome < out[j].Outcome
	})
	return out, nil
}
