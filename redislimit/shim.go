package redislimit

import "time"

// RateLimit and LimitResult mirror the shapes that package apikey is
// getting (issue 10); this file goes once they exist there.
type RateLimit struct {
	Name     string
	Limit    int64
	Period   time.Duration
	Burst    int64
	FailOpen bool
}

// LimitResult mirrors apikey.LimitResult.
type LimitResult struct {
	Name       string
	Limit      int64
	Period     time.Duration
	Remaining  int64
	Reset      time.Duration
	RetryAfter time.Duration
	Allowed    bool
}
