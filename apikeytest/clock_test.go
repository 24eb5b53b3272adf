package apikeytest_test

import (
	"sync"
	"testing"
	"time"

	"github.com/go-apikey/apikey/apikeytest"
)

func TestClock(t *testing.T) {
	start := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	c := apikeytest.NewClock(start)
	if got := c.Now(); !got.Equal(start) {
		t.Errorf("Now() = %s, want %s", got, start)
	}
	c.Add(90 * time.Second)
	if got, want := c.Now(), start.Add(90*time.Second); !got.Equal(want) {
		t.Errorf("after Add(90s): Now() = %s, want %s", got, want)
	}
	c.Add(-time.Hour)
	if got, want := c.Now(), start.Add(90*time.Second-time.Hour); !got.Equal(want) {
		t.Errorf("after Add(-1h): Now() = %s, want %s", got, want)
	}
	later := start.AddDate(1, 0, 0)
	c.Set(later)
	if got := c.Now(); !got.Equal(later) {
		t.Errorf("after Set: Now() = %s, want %s", got, later)
	}
	if got := new(apikeytest.Clock).Now(); !got.IsZero() {
		t.Errorf("zero Clock: Now() = %s, want the zero time", got)
	}
}

// TestClockConcurrent moves one clock from many goroutines: no update is
// lost (and the race detector sees no race).
func TestClockConcurrent(t *testing.T) {
	start := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	c := apikeytest.NewClock(start)
	const workers, steps = 8, 100
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range steps {
				c.Add(time.Second)
				_ = c.Now()
			}
		})
	}
	wg.Wait()
	if got, want := c.Now(), start.Add(workers*steps*time.Second); !got.Equal(want) {
		t.Errorf("after %d concurrent Adds of 1s: Now() = %s, want %s", workers*steps, got, want)
	}
}
