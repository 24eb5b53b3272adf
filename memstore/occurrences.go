package memstore

import (
	"context"
	"time"

	"github.com/go-apikey/apikey"
)

var _ apikey.OccurrenceStore = (*Store)(nil)

// occurrenceID identifies a recorded occurrence.
type occurrenceID struct {
	keyID string
	typ   apikey.EventType
	due   time.Time
}

// RecordOccurrences implements apikey.OccurrenceStore: under one lock, it
// writes the event of each occurrence not recorded before whose key exists.
func (s *Store) RecordOccurrences(ctx context.Context, occ []apikey.Occurrence) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	for _, o := range occ {
		if o.Event == nil {
			return errEventIncomplete
		}
		if err := checkEvent(o.Event); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.occurrences == nil {
		s.occurrences = map[occurrenceID]struct{}{}
	}
	for _, o := range occ {
		rec, ok := s.keys[o.Event.KeyID]
		id := occurrenceID{o.Event.KeyID, o.Event.Type, norm(o.Due)}
		if _, done := s.occurrences[id]; !ok || done {
			continue
		}
		s.occurrences[id] = struct{}{}
		s.writeEventLocked(o.Event, rec.Owner, nil)
	}
	return nil
}
