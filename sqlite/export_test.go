package sqlite

import "time"

// SetBusyTimeout sets the busy timeout of the Stores that Open opens
// from now on, and returns the function that restores BusyTimeout.
func SetBusyTimeout(d time.Duration) (restore func()) {
	busyTimeout = d
	return func() { busyTimeout = BusyTimeout }
}
