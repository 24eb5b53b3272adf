package memstore

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/go-apikey/apikey"
)

var (
	_ apikey.ChangeFeed       = (*Store)(nil)
	_ apikey.InstanceRegistry = (*Store)(nil)
)

// changedLocked appends the change op of key id to the feed. The caller holds
// s.mu for writing, so sequence numbers follow the order of the changes.
func (s *Store) changedLocked(op apikey.ChangeOp, id string) {
	s.lastSeq++
	s.changes = append(s.changes, apikey.KeyChange{Seq: s.lastSeq, Op: op, KeyID: id, At: norm(time.Now())})
}

// ChangesAfter implements apikey.ChangeFeed: at most limit changes with a
// sequence number above seq, oldest first.
func (s *Store) ChangesAfter(ctx context.Context, seq int64, limit int) ([]apikey.KeyChange, error) {
	if err := s.usable(ctx); err != nil {
		return nil, opErr("changes after", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	i, _ := slices.BinarySearchFunc(s.changes, seq+1, func(c apikey.KeyChange, seq int64) int { return cmp.Compare(c.Seq, seq) })
	rest := s.changes[i:]
	return slices.Clone(rest[:min(len(rest), max(limit, 0))]), nil
}

// LastChange implements apikey.ChangeFeed: the sequence number of the last
// change recorded, or 0.
func (s *Store) LastChange(ctx context.Context) (int64, error) {
	if err := s.usable(ctx); err != nil {
		return 0, opErr("last change", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.lastSeq, nil
}

// PruneChanges implements apikey.ChangeFeed: it drops the changes recorded
// more than olderThan ago, keeping the last one.
func (s *Store) PruneChanges(ctx context.Context, olderThan time.Duration) error {
	if err := s.usable(ctx); err != nil {
		return opErr("prune changes", err)
	}
	before := time.Now().Add(-olderThan)
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for n < len(s.changes)-1 && s.changes[n].At.Before(before) {
		n++
	}
	s.changes = slices.Delete(s.changes, 0, n)
	return nil
}

// PutInstance implements apikey.InstanceRegistry, with the process's clock.
func (s *Store) PutInstance(ctx context.Context, in apikey.Instance, ttl time.Duration) error {
	if err := s.usable(ctx); err != nil {
		return opErr("put instance", err)
	}
	now := norm(time.Now())
	s.mu.Lock()
	defer s.mu.Unlock()
	started := now
	if prev, ok := s.instances[in.ID]; ok {
		started = prev.StartedAt
	}
	s.instances[in.ID] = apikey.Instance{
		ID: in.ID, Name: in.Name, StartedAt: started, HeartbeatAt: now,
		LiveUntil: norm(now.Add(ttl)), AckedSeq: in.AckedSeq,
	}
	return nil
}

// Instances implements apikey.InstanceRegistry: the live instances, by
// name then id.
func (s *Store) Instances(ctx context.Context) ([]apikey.Instance, error) {
	if err := s.usable(ctx); err != nil {
		return nil, opErr("instances", err)
	}
	now := time.Now()
	s.mu.RLock()
	var out []apikey.Instance
	for _, in := range s.instances {
		if in.LiveUntil.After(now) {
			out = append(out, in)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b apikey.Instance) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// RemoveInstance implements apikey.InstanceRegistry.
func (s *Store) RemoveInstance(ctx context.Context, id string) error {
	if err := s.usable(ctx); err != nil {
		return opErr("remove instance", err)
	}
	s.mu.Lock()
	delete(s.instances, id)
	s.mu.Unlock()
	return nil
}

// PruneInstances implements apikey.InstanceRegistry.
func (s *Store) PruneInstances(ctx context.Context, expiredFor time.Duration) error {
	if err := s.usable(ctx); err != nil {
		return opErr("prune instances", err)
	}
	before := time.Now().Add(-expiredFor)
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, in := range s.instances {
		if in.LiveUntil.Before(before) {
			delete(s.instances, id)
		}
	}
	return nil
}
