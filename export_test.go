package apikey

import "time"

// SetSubscribeTimeout shortens how long a Listen may take to subscribe,
// for a test.
func SetSubscribeTimeout(d time.Duration) (restore func()) {
	old := subscribeTimeout
	subscribeTimeout = d
	return func() { subscribeTimeout = old }
}

// ParseDuration exposes parseDuration to the black-box tests.
var ParseDuration = parseDuration
