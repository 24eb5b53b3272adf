package memstore

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Dump returns an encoding of everything s holds: keys with their hashes,
// revoked ids, the audit log, the usage counters and the leaks. The conformance suite
// searches it for plaintext secrets.
func Dump(s *Store) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var b bytes.Buffer
	for _, r := range s.keys {
		line, err := json.Marshal(r)
		if err != nil {
			return nil, err
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	for id := range s.revoked {
		fmt.Fprintf(&b, "revoked %s\n", id)
	}
	for _, e := range s.events {
		fmt.Fprintf(&b, "event %d %s %s %q %s %q %q %s\n", e.id, e.typ, e.at.Format("2006-01-02T15:04:05.000000Z"), e.actor, e.keyID, e.owner, e.url, e.changes)
	}
	for id, slots := range s.usage {
		for slot, n := range slots {
			fmt.Fprintf(&b, "usage %s %d %s %d\n", id, slot.bucket, slot.outcome, n)
		}
	}
	for _, l := range s.leaks {
		line, err := json.Marshal(l)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "leak %s\n", line)
	}
	return b.Bytes(), nil
}
