package apikeytest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
)

// usageString renders counters compactly for comparisons and messages,
// and reports any bucket that is not in UTC.
func usageString(t *testing.T, rows []apikey.UsageCount) string {
	t.Helper()
	var s []string
	for _, r := range rows {
		if r.Bucket.Location() != time.UTC {
			t.Errorf("usage bucket %s is in location %q, want UTC", r.Bucket, r.Bucket.Location())
		}
		s = append(s, fmt.Sprintf("%s %s %s=%d", r.KeyID, r.Bucket.UTC().Format("15:04"), r.Outcome, r.Count))
	}
	return "[" + strings.Join(s, ", ") + "]"
}

func usage(t *testing.T, h Harness, id string, from, to time.Time) string {
	t.Helper()
	rows, err := h.Store.Usage(t.Context(), id, from, to)
	if err != nil {
		t.Fatalf("Usage(%s): %v", id, err)
	}
	return usageString(t, rows)
}

func testRecordUsage(t *testing.T, h Harness) {
	ctx := t.Context()
	t0 := base.Truncate(time.Minute) // 05:06
	k1, k2 := record(testID("Used", 1), "o", "one", base), record(testID("Used", 2), "o", "two", base)
	insert(t, h, k1)
	insert(t, h, k2)
	const missing = "NoSuchKey000"
	min := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute).In(farEast) }
	err := h.Store.RecordUsage(ctx, []apikey.UsageCount{
		{KeyID: k1.ID, Bucket: min(0), Outcome: "valid", Count: 3},
		{KeyID: k1.ID, Bucket: min(0), Outcome: "invalid_key", Count: 1},
		{KeyID: k2.ID, Bucket: min(1), Outcome: "valid", Count: 2},
		{KeyID: missing, Bucket: min(0), Outcome: "valid", Count: 5},
	}, map[string]time.Time{k1.ID: t0.Add(10 * time.Second).In(farEast), missing: t0})
	if err != nil {
		t.Fatalf("RecordUsage: %v", err)
	}
	err = h.Store.RecordUsage(ctx, []apikey.UsageCount{
		{KeyID: k1.ID, Bucket: min(0), Outcome: "valid", Count: 4},
		{KeyID: k1.ID, Bucket: min(2), Outcome: "key_revoked", Count: 1},
	}, map[string]time.Time{k1.ID: t0.Add(5 * time.Second), k2.ID: t0.Add(70*time.Second + 123456*time.Nanosecond)})
	if err != nil {
		t.Fatalf("second RecordUsage: %v", err)
	}
	if err := h.Store.RecordUsage(ctx, nil, nil); err != nil {
		t.Errorf("RecordUsage of nothing: %v", err)
	}

	tests := []struct {
		name     string
		id       string
		from, to time.Time
		want     string
	}{
		{"counts add up across calls", k1.ID, min(-60), min(60),
			fmt.Sprintf("[%[1]s 05:06 invalid_key=1, %[1]s 05:06 valid=7, %[1]s 05:08 key_revoked=1]", k1.ID)},
		{"from is inclusive", k1.ID, min(2), min(3), fmt.Sprintf("[%s 05:08 key_revoked=1]", k1.ID)},
		{"to is exclusive", k1.ID, min(1), min(2), "[]"},
		{"a bucket just inside", k1.ID, min(0), min(0).Add(time.Microsecond), fmt.Sprintf("[%[1]s 05:06 invalid_key=1, %[1]s 05:06 valid=7]", k1.ID)},
		{"a bucket just outside", k1.ID, min(0).Add(time.Microsecond), min(2), "[]"},
		{"other key", k2.ID, min(-60), min(60), fmt.Sprintf("[%s 05:07 valid=2]", k2.ID)},
		{"unknown ids are ignored", missing, min(-60), min(60), "[]"},
	}
	for _, tt := range tests {
		if got := usage(t, h, tt.id, tt.from, tt.to); got != tt.want {
			t.Errorf("%s: Usage = %s, want %s", tt.name, got, tt.want)
		}
	}

	// last_used_at only moves forward, and comes back from every read.
	want1 := lookup(t, h, k1.ID).Key
	want1.LastUsedAt = ptr(t0.Add(10 * time.Second))
	checkKey(t, "Lookup after an older last use", &lookup(t, h, k1.ID).Key, &want1)
	want2 := k2.Key
	want2.LastUsedAt = ptr(us(t0.Add(70*time.Second + 123456*time.Nanosecond)))
	checkKey(t, "Lookup of the other key", &lookup(t, h, k2.ID).Key, &want2)
	if err := h.Store.RecordUsage(ctx, nil, map[string]time.Time{k1.ID: t0.Add(20 * time.Second)}); err != nil {
		t.Fatalf("RecordUsage: %v", err)
	}
	want1.LastUsedAt = ptr(t0.Add(20 * time.Second))
	checkKey(t, "Lookup after a later last use", &lookup(t, h, k1.ID).Key, &want1)
	keys, err := h.Store.List(ctx, apikey.Query{Now: base, Limit: 10})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	for _, k := range keys {
		checkKey(t, "List vs Lookup of "+k.ID, k, &lookup(t, h, k.ID).Key)
	}
	want1.Name = "renamed"
	got, err := h.Store.Update(ctx, k1.ID, apikey.KeyUpdate{Name: ptr("renamed")}, nil)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	checkKey(t, "Update of a used key", got, &want1)

	// A revoked key's last use is still recorded (a revocation does not
	// erase it, and usage flushes lag behind).
	if _, err := h.Store.Revoke(ctx, k2.ID, us(base), nil); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if err := h.Store.RecordUsage(ctx, []apikey.UsageCount{{KeyID: k2.ID, Bucket: min(3), Outcome: "key_revoked", Count: 1}},
		map[string]time.Time{k2.ID: t0.Add(3 * time.Minute)}); err != nil {
		t.Fatalf("RecordUsage of a revoked key: %v", err)
	}
	if got := lookup(t, h, k2.ID).LastUsedAt; got == nil || !got.Equal(t0.Add(3*time.Minute)) {
		t.Errorf("LastUsedAt of a revoked key after RecordUsage = %v, want %s", got, t0.Add(3*time.Minute))
	}

	// A deleted key's counters stay, but no new ones are added.
	if err := h.Store.Delete(ctx, k2.ID, nil); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := h.Store.RecordUsage(ctx, []apikey.UsageCount{{KeyID: k2.ID, Bucket: min(4), Outcome: "valid", Count: 1}},
		map[string]time.Time{k2.ID: t0.Add(4 * time.Minute)}); err != nil {
		t.Fatalf("RecordUsage of a deleted key: %v", err)
	}
	if got, want := usage(t, h, k2.ID, min(4), min(5)), "[]"; got != want {
		t.Errorf("Usage of a deleted key after RecordUsage = %s, want %s", got, want)
	}

	// A large batch: 5,000 minutes of one key and 5,000 unknown ids.
	const n = 5000
	var counts []apikey.UsageCount
	last := map[string]time.Time{}
	for i := range n {
		counts = append(counts,
			apikey.UsageCount{KeyID: k1.ID, Bucket: min(1000 + i), Outcome: "valid", Count: int64(i + 1)},
			apikey.UsageCount{KeyID: testID("Ghost", i), Bucket: min(i), Outcome: "valid", Count: 1})
		last[testID("Ghost", i)] = min(i)
	}
	last[k1.ID] = min(1000 + n)
	if err := h.Store.RecordUsage(ctx, counts, last); err != nil {
		t.Fatalf("RecordUsage of %d counters: %v", len(counts), err)
	}
	rows, err := h.Store.Usage(ctx, k1.ID, min(1000), min(1000+n))
	if err != nil {
		t.Fatalf("Usage: %v", err)
	}
	if len(rows) != n {
		t.Fatalf("Usage after a batch of %d minutes: %d rows", n, len(rows))
	}
	for i, r := range rows {
		if !r.Bucket.Equal(min(1000+i)) || r.Count != int64(i+1) || r.Outcome != "valid" || r.KeyID != k1.ID {
			t.Fatalf("Usage row %d = %+v, want %s valid=%d", i, r, min(1000+i).UTC(), i+1)
		}
	}
	if got := lookup(t, h, k1.ID).LastUsedAt; got == nil || !got.Equal(min(1000+n)) {
		t.Errorf("LastUsedAt after the batch = %v, want %s", got, min(1000+n).UTC())
	}
	if got := usage(t, h, testID("Ghost", 1), min(-1), min(n)); got != "[]" {
		t.Errorf("Usage of an unknown id after the batch = %s, want []", got)
	}
}

func testUsageThroughManager(t *testing.T, h Harness) {
	ctx := t.Context()
	clk := newClock() // 05:06:07.89
	// No background flush during the test: FlushUsage writes.
	m := newManager(t, h, apikey.Config{Now: clk.Now, UsageFlushInterval: time.Hour})
	t.Cleanup(func() { m.Close(t.Context()) })
	k, token := create(t, m, apikey.CreateParams{Name: "busy"})
	r, rtoken := create(t, m, apikey.CreateParams{Name: "revoked"})
	e, etoken := create(t, m, apikey.CreateParams{Name: "expiring", ExpiresAt: ptr(base.Add(30 * time.Second))})
	verify := func(token string, want error) {
		t.Helper()
		if _, err := m.Verify(ctx, token); want == nil && err != nil {
			t.Fatalf("Verify: %v", err)
		} else if want != nil {
			wantErr(t, "Verify", err, want)
		}
	}
	verify(token, nil)
	clk.Add(10 * time.Second)
	verify(token, nil)
	if _, err := m.Revoke(ctx, r.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	verify(rtoken, apikey.ErrRevoked)
	last := clk.Add(time.Minute) // 05:07:17.89
	verify(token, nil)
	wrong := WrongSecret(token)
	verify(wrong, apikey.ErrInvalidKey)
	verify(wrong, apikey.ErrInvalidKey)
	verify(etoken, apikey.ErrExpired)
	if err := m.FlushUsage(ctx); err != nil {
		t.Fatalf("FlushUsage: %v", err)
	}

	got, err := m.Get(ctx, k.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	checkTime(t, "LastUsedAt after FlushUsage", got.LastUsedAt, &last)
	for _, id := range []string{r.ID, e.ID} {
		if got, err := m.Get(ctx, id); err != nil || got.LastUsedAt != nil {
			t.Errorf("Get(%s) = LastUsedAt %v, err %v; want never used (only rejected)", id, got.LastUsedAt, err)
		}
	}
	from, to := base.Add(-time.Hour), base.Add(time.Hour)
	byMinute := func(id string) string {
		t.Helper()
		rows, err := m.Usage(ctx, id, from, to, apikey.ByMinute)
		if err != nil {
			t.Fatalf("Manager.Usage: %v", err)
		}
		return usageString(t, rows)
	}
	if got, want := byMinute(k.ID), fmt.Sprintf("[%[1]s 05:06 valid=2, %[1]s 05:07 invalid_key=2, %[1]s 05:07 valid=1]", k.ID); got != want {
		t.Errorf("Manager.Usage of the used key = %s, want %s", got, want)
	}
	if got, want := byMinute(r.ID), fmt.Sprintf("[%s 05:06 key_revoked=1]", r.ID); got != want {
		t.Errorf("Manager.Usage of the revoked key = %s, want %s", got, want)
	}
	if got, want := byMinute(e.ID), fmt.Sprintf("[%s 05:07 key_expired=1]", e.ID); got != want {
		t.Errorf("Manager.Usage of the expired key = %s, want %s", got, want)
	}
	rows, err := m.Usage(ctx, k.ID, from, to, apikey.ByHour)
	if err != nil {
		t.Fatalf("Manager.Usage by hour: %v", err)
	}
	if got, want := usageString(t, rows), fmt.Sprintf("[%[1]s 05:00 invalid_key=2, %[1]s 05:00 valid=3]", k.ID); got != want {
		t.Errorf("Manager.Usage by hour = %s, want %s", got, want)
	}

	// Nothing pending: a flush changes nothing. Later use adds up.
	if err := m.FlushUsage(ctx); err != nil {
		t.Fatalf("FlushUsage of nothing: %v", err)
	}
	verify(token, nil)
	if err := m.Close(ctx); err != nil { // flushes what is pending
		t.Fatalf("Close: %v", err)
	}
	if got, want := byMinute(k.ID), fmt.Sprintf("[%[1]s 05:06 valid=2, %[1]s 05:07 invalid_key=2, %[1]s 05:07 valid=2]", k.ID); got != want {
		t.Errorf("Manager.Usage after more use and Close = %s, want %s", got, want)
	}
	keys, err := h.Store.List(ctx, apikey.Query{Now: clk.Now(), Limit: 10})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if i := slices.IndexFunc(keys, func(x *apikey.Key) bool { return x.ID == k.ID }); i < 0 {
		t.Errorf("List does not return the used key")
	} else {
		checkTime(t, "List: LastUsedAt", keys[i].LastUsedAt, &last)
	}
}
