package apikeyportal

import (
	"sync"
	"time"

	"github.com/go-apikey/apikey"
)

// reveals holds the plaintext of keys just created until the one page view
// that shows it, at most RevealTTL. It lives in memory only.
type reveals struct {
	mu sync.Mutex
	m  map[revealID]reveal
}

// revealID ties a pending secret to its owner as well as its key, so that
// only the owner who created the key can take it.
type revealID struct{ owner, keyID string }

type reveal struct {
	token   string
	expires time.Time
}

func newReveals() *reveals { return &reveals{m: map[revealID]reveal{}} }

// put stores the token of k, created by owner at now, and forgets the
// tokens that waited too long.
func (rs *reveals) put(owner string, k *apikey.Key, token string, now time.Time) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for id, rv := range rs.m {
		if !now.Before(rv.expires) {
			delete(rs.m, id)
		}
	}
	rs.m[revealID{owner, k.ID}] = reveal{token: token, expires: now.Add(RevealTTL)}
}

// take removes and returns the pending token of the owner's key, if any
// and not expired at now.
func (rs *reveals) take(owner, keyID string, now time.Time) (reveal, bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	id := revealID{owner, keyID}
	rv, ok := rs.m[id]
	delete(rs.m, id)
	return rv, ok && now.Before(rv.expires)
}

// drop forgets the pending token of the owner's key.
func (rs *reveals) drop(owner, keyID string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	delete(rs.m, revealID{owner, keyID})
}
