package usagechart_test

import (
	"strings"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/internal/usagechart"
)

var t0 = time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC)

func counts() []apikey.UsageCount {
	return []apikey.UsageCount{
		{Bucket: t0, Outcome: "valid", Count: 8},
		{Bucket: t0, Outcome: "invalid_key", Count: 2},
		{Bucket: t0.Add(2 * time.Hour), Outcome: "valid", Count: 4},
		{Bucket: t0.Add(2 * time.Hour), Outcome: "key_revoked", Count: 1},
		{Bucket: t0.Add(-time.Hour), Outcome: "valid", Count: 99}, // before the range
	}
}

func TestFill(t *testing.T) {
	b := usagechart.Fill(counts(), t0.Add(30*time.Minute), t0.Add(3*time.Hour), apikey.ByHour)
	if len(b) != 3 || !b[0].Start.Equal(t0) || !b[2].Start.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("Fill: %+v, want 3 hourly buckets from %v", b, t0)
	}
	if b[0].Valid != 8 || b[0].Invalid != 2 || b[1].Total() != 0 || b[2].Revoked != 1 || b[2].Rejected() != 1 {
		t.Errorf("Fill counts: %+v", b)
	}
	if s := usagechart.Sum(b); s.Valid != 12 || s.Rejected() != 3 {
		t.Errorf("Sum = %+v, want 12 valid and 3 rejected", s)
	}
	if d := usagechart.Fill(nil, t0, t0.Add(7*24*time.Hour), apikey.ByDay); len(d) != 7 {
		t.Errorf("7 days by day: %d buckets", len(d))
	}
	if e := usagechart.Fill(nil, t0, t0, apikey.ByDay); e != nil {
		t.Errorf("empty range: %+v", e)
	}
}

func TestText(t *testing.T) {
	var sb strings.Builder
	b := usagechart.Fill(counts(), t0, t0.Add(3*time.Hour), apikey.ByHour)
	if err := usagechart.Text(&sb, b, apikey.ByHour, 10); err != nil {
		t.Fatal(err)
	}
	want := "2030-01-02 00:00  ████████░░  8 valid, 2 rejected\n" +
		"2030-01-02 01:00              0 valid\n" +
		"2030-01-02 02:00  ████░       4 valid, 1 rejected\n"
	if sb.String() != want {
		t.Errorf("Text:\n%s\nwant:\n%s", sb.String(), want)
	}
}

func TestSVG(t *testing.T) {
	b := usagechart.Fill(counts(), t0, t0.Add(3*time.Hour), apikey.ByHour)
	svg := string(usagechart.SVG("c1", "Verifications <by hour>", b, apikey.ByHour))
	for _, want := range []string{
		`<svg class="usage-chart"`, `role="img"`, `<title id="c1-title">Verifications &lt;by hour&gt;</title>`,
		`<pattern id="c1-invalid"`, `fill="url(#c1-invalid)"`, `fill="url(#c1-revoked)"`,
		`<title>2030-01-02 00:00: 8 valid, 2 invalid key, 0 expired, 0 revoked</title>`,
		`12 valid, 2 invalid key, 0 expired, 1 revoked verifications.`,
	} {
		if !strings.Contains(svg, want) {
			t.Errorf("SVG lacks %q:\n%s", want, svg)
		}
	}
	if n := strings.Count(svg, `<g class="bar">`); n != 3 {
		t.Errorf("SVG has %d bars, want 3", n)
	}
	if strings.Contains(svg, "No verifications") {
		t.Error("a chart with data says it has none")
	}
	empty := string(usagechart.SVG("c2", "none", usagechart.Fill(nil, t0, t0.Add(time.Hour), apikey.ByHour), apikey.ByHour))
	if !strings.Contains(empty, "No verifications in this period") {
		t.Errorf("empty chart does not say so:\n%s", empty)
	}
	if l := string(usagechart.Legend("c1")); !strings.Contains(l, "invalid key (hatched)") || !strings.Contains(l, "revoked (crossed)") {
		t.Errorf("legend: %s", l)
	}
}
