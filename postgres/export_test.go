package postgres

import "time"

// SetListenPing shortens Listen's health-check interval for a test.
func SetListenPing(d time.Duration) (restore func()) {
	old := listenPing
	listenPing = d
	return func() { listenPing = old }
}
