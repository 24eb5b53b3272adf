package apikey_test

import (
	"context"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeytest"
)

// Usage is counted per minute and outcome across flushes, including after a
// flush with no activity has recycled the key's in-memory counters.
func TestUsageAcrossFlushes(t *testing.T) {
	ctx := context.Background()
	clk := apikeytest.NewClock(t0.Add(30 * time.Second))
	st := openStore(t)
	m := mustManager(t, st, apikey.Config{Now: clk.Now, UsageFlushInterval: time.Hour})
	k, token, err := m.Create(ctx, apikey.CreateParams{Name: "n"})
	if err != nil {
		t.Fatal(err)
	}
	last := "Q" // same id, wrong secret: change the secret's last character
	if token[len(token)-7:len(token)-6] == last {
		last = "R"
	}
	bad := withChecksum(token[:len(token)-7] + last)
	m.Verify(ctx, token)
	m.Verify(ctx, bad)
	clk.Add(time.Minute) // next minute: earlier counts spill
	m.Verify(ctx, token)
	if err := m.FlushUsage(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.FlushUsage(ctx); err != nil { // idle: recycles the counters
		t.Fatal(err)
	}
	m.Verify(ctx, token)
	if err := m.FlushUsage(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := m.Usage(ctx, k.ID, t0, t0.Add(time.Hour), apikey.ByMinute)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"0 valid": 1, "0 invalid_key": 1, "1 valid": 2}
	if len(got) != len(want) {
		t.Fatalf("Usage = %+v, want %v", got, want)
	}
	for _, u := range got {
		key := []string{"0", "1"}[int(u.Bucket.Sub(t0)/time.Minute)] + " " + u.Outcome
		if want[key] != u.Count {
			t.Errorf("Usage %s = %d, want %d", key, u.Count, want[key])
		}
	}
	hourly, _ := m.Usage(ctx, k.ID, t0, t0.Add(time.Hour), apikey.ByHour)
	if len(hourly) != 2 || hourly[0].Count+hourly[1].Count != 4 {
		t.Errorf("hourly usage = %+v, want 3 valid and 1 invalid_key in one hour", hourly)
	}
	daily, _ := m.Usage(ctx, k.ID, t0.Add(-24*time.Hour), t0.Add(24*time.Hour), apikey.ByDay)
	day := time.Date(t0.Year(), t0.Month(), t0.Day(), 0, 0, 0, 0, time.UTC)
	if len(daily) != 2 || !daily[0].Bucket.Equal(day) || daily[0].Count+daily[1].Count != 4 {
		t.Errorf("daily usage = %+v, want 3 valid and 1 invalid_key on %v", daily, day)
	}
	got1, _ := m.Get(ctx, k.ID)
	if got1.LastUsedAt == nil || !got1.LastUsedAt.Equal(clk.Now()) {
		t.Errorf("LastUsedAt = %v, want %v", got1.LastUsedAt, clk.Now())
	}
	for _, bad := range []struct {
		from, to time.Time
		g        apikey.Granularity
	}{{t0, t0, apikey.ByMinute}, {t0, t0.Add(40 * 24 * time.Hour), apikey.ByHour}, {t0, t0.Add(time.Hour), "week"}} {
		if _, err := m.Usage(ctx, k.ID, bad.from, bad.to, bad.g); err == nil {
			t.Errorf("Usage(%v, %v, %q) succeeded, want an error", bad.from, bad.to, bad.g)
		}
	}
}
