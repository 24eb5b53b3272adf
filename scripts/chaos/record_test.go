package main

import (
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		status int
		want   []int
		got    outcome
	}{
		{200, []int{200}, fine},
		{401, []int{200, 401}, fine},
		{401, []int{200}, unexpected},
		{503, []int{200}, unavailable},
		{500, []int{200}, serverError},
		{504, []int{200}, serverError},
		{0, []int{200}, noAnswer},
	}
	for _, tt := range tests {
		if got := classify(tt.status, tt.want...); got != tt.got {
			t.Errorf("classify(%d, %v) = %d, want %d", tt.status, tt.want, got, tt.got)
		}
	}
}

func TestPercentile(t *testing.T) {
	ms := func(n ...int) []time.Duration {
		var ds []time.Duration
		for _, v := range n {
			ds = append(ds, time.Duration(v)*time.Millisecond)
		}
		return ds
	}
	tests := []struct {
		ds   []time.Duration
		p    int
		want time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 99, 7 * time.Millisecond},
		{ms(4, 1, 3, 2), 50, 2 * time.Millisecond},
		{ms(4, 1, 3, 2), 100, 4 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 90, 9 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := percentile(tt.ds, tt.p); got != tt.want {
			t.Errorf("percentile(%v, %d) = %v, want %v", tt.ds, tt.p, got, tt.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	c := cycle{variant: "notify", fault: "stop-pg", storeDown: true,
		begin: at(0), faultStart: at(5), faultEnd: at(10), restored: at(11), end: at(15)}
	r := newRecorder()
	for _, e := range []struct {
		at float64
		o  outcome
	}{
		{-1, unavailable},   // before the cycle: ignored
		{1, fine},           // before the fault
		{2, serverError},    // before the fault
		{6, unavailable},    // store down
		{10.5, unavailable}, // store still down: PostgreSQL starting
		{11.2, unavailable}, // store back: a 5xx, and the last failure
		{7, noAnswer},
		{8, unexpected},
		{16, serverError}, // after the cycle: ignored
	} {
		r.exchange(at(e.at), e.o)
	}
	for _, p := range []probeResult{
		{revoked: at(1), warmed: true, latency: time.Second},                     // before: not in the latency
		{revoked: at(6), warmed: true, latency: 3 * time.Second, accepted: true}, // during
		{revoked: at(7), warmed: true, latency: 100 * time.Millisecond},
		{revoked: at(8), warmed: false, latency: 0}, // not warmed: not in the latency
		{revoked: at(12), accepted: true},           // after
		{revoked: at(15), accepted: true},           // next cycle
	} {
		r.probe(p)
	}
	got := r.summarize(c)
	want := result{cycle: c, requests: 7, serverErrors: 2, storeDown503: 2, noAnswer: 1, unexpected: 1,
		recovery: 1200 * time.Millisecond, recovered: true,
		probes: 2, accepted: 2, p50: 100 * time.Millisecond, p99: 3 * time.Second, max: 3 * time.Second}
	if got != want {
		t.Errorf("summarize:\n got %+v\nwant %+v", got, want)
	}

	// Failures until the last second of the cycle: not recovered.
	r.exchange(at(14.5), noAnswer)
	if got := r.summarize(c); got.recovered {
		t.Errorf("summarize with a failure 0.5s before the end: recovered, want not")
	}
}
