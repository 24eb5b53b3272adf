package admin

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Concurrent attempts cannot all pass the limit: checking and counting are
// one step.
func TestThrottleConcurrentAttempts(t *testing.T) {
	th := newThrottle(15 * time.Minute)
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 60 {
		wg.Go(func() {
			if th.attempt(now, "account:a", 5, "address:x", 20, time.Time{}) == 0 {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	if got := allowed.Load(); got != 5 {
		t.Errorf("%d of 60 concurrent attempts allowed, want 5 (the account limit)", got)
	}
	// A successful login takes its attempt back.
	th.reset("account:a")
	th.forget("address:x", now)
	if th.attempt(now, "account:a", 5, "address:x", 20, time.Time{}) != 0 {
		t.Error("attempt after reset refused")
	}
	if th.attempt(now.Add(16*time.Minute), "account:a", 5, "address:x", 20, time.Time{}) != 0 {
		t.Error("attempt after the window refused")
	}
}
