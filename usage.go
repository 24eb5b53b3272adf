package apikey

import (
	"context"
	"hash/maphash"
	"sort"
	"sync"
	"time"
)

// UsageCount is the number of verifications of one key with one outcome in
// one minute.
type UsageCount struct {
	KeyID string `json:"key_id"`
	// Bucket is the start of the minute (or hour, from Manager.Usage), UTC.
	Bucket time.Time `json:"bucket"`
	// Outcome is "valid", "invalid_key" (the id exists but the secret was
	// wrong), "key_expired" or "key_revoked".
	Outcome string `json:"outcome"`
	Count   int64  `json:"count"`
}

// DefaultUsageFlushInterval is how often a Manager writes usage by default:
// LastUsedAt is accurate to this interval.
const DefaultUsageFlushInterval = 10 * time.Second

// usageShards spreads usage recording over several locks so that parallel
// verifications do not contend.
const usageShards = 32

type usageKey struct {
	id      string
	minute  int64
	outcome string
}

type usageShard struct {
	mu     sync.Mutex
	counts map[usageKey]int64
	last   map[string]time.Time
	_      [40]byte // keep shards on separate cache lines
}

type usageTracker struct {
	seed   maphash.Seed
	shards [usageShards]usageShard
}

func newUsageTracker() *usageTracker {
	u := &usageTracker{seed: maphash.MakeSeed()}
	for i := range u.shards {
		u.shards[i].counts = map[usageKey]int64{}
		u.shards[i].last = map[string]time.Time{}
	}
	return u
}

func (u *usageTracker) record(id, outcome string, now time.Time) {
	s := &u.shards[maphash.String(u.seed, id)%usageShards]
	s.mu.Lock()
	s.counts[usageKey{id, now.Unix() / 60, outcome}]++
	if outcome == "valid" && now.After(s.last[id]) {
		s.last[id] = now
	}
	s.mu.Unlock()
}

// take empties the tracker and returns what it held.
func (u *usageTracker) take() ([]UsageCount, map[string]time.Time) {
	var counts []UsageCount
	last := map[string]time.Time{}
	for i := range u.shards {
		s := &u.shards[i]
		s.mu.Lock()
		c, l := s.counts, s.last
		s.counts, s.last = map[usageKey]int64{}, map[string]time.Time{}
		s.mu.Unlock()
		for k, n := range c {
			counts = append(counts, UsageCount{KeyID: k.id, Bucket: time.Unix(k.minute*60, 0).UTC(), Outcome: k.outcome, Count: n})
		}
		for id, t := range l {
			last[id] = t
		}
	}
	return counts, last
}

// putBack returns unwritten usage after a failed flush, so that it is
// written with the next one.
func (u *usageTracker) putBack(counts []UsageCount, last map[string]time.Time) {
	for _, c := range counts {
		s := &u.shards[maphash.String(u.seed, c.KeyID)%usageShards]
		s.mu.Lock()
		s.counts[usageKey{c.KeyID, c.Bucket.Unix() / 60, c.Outcome}] += c.Count
		s.mu.Unlock()
	}
	for id, t := range last {
		s := &u.shards[maphash.String(u.seed, id)%usageShards]
		s.mu.Lock()
		if t.After(s.last[id]) {
			s.last[id] = t
		}
		s.mu.Unlock()
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
)

// Usage returns the verification counts of one key between from
// (inclusive) and to (exclusive), by minute or by hour, oldest first. Counts
// not yet flushed are not included.
func (m *Manager) Usage(ctx context.Context, id string, from, to time.Time, g Granularity) ([]UsageCount, error) {
	if !ValidID(id) {
		return nil, ErrNotFound
	}
	if g == "" {
		g = ByMinute
	}
	if g != ByMinute && g != ByHour {
		return nil, invalid("granularity", "must be minute or hour")
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
		hour    int64
		outcome string
	}
	sum := map[k]int64{}
	for _, r := range rows {
		sum[k{r.Bucket.Unix() / 3600, r.Outcome}] += r.Count
	}
	out := make([]UsageCount, 0, len(sum))
	for key, n := range sum {
		out = append(out, UsageCount{KeyID: id, Bucket: time.Unix(key.hour*3600, 0).UTC(), Outcome: key.outcome, Count: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Bucket.Equal(out[j].Bucket) {
			return out[i].Bucket.Before(out[j].Bucket)
		}
		return out[i].Outcome < out[j].Outcome
	})
	return out, nil
}
