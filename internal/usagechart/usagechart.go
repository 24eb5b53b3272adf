// Package usagechart turns the usage counts of a key (apikey.UsageCount)
// into charts: a series with every bucket of a range, a bar chart for a
// terminal, and an inline SVG bar chart for HTML pages, drawn on the
// server with html/template (no script, nothing loaded from elsewhere).
//
// The SVG is readable without colour: each outcome has its own fill
// pattern (solid, hatched, dotted, cross-hatched), a legend names them,
// every bar carries a <title> with its counts, and the axis is labelled.
// It is used by the admin site of apikey serve and by apikeyportal.
package usagechart

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/go-apikey/apikey"
)

// Bucket is the number of verifications of a key in one bucket, by
// outcome.
type Bucket struct {
	Start time.Time // UTC
	// Valid counts CodeValid and CodeValidPrevious (the previous secret
	// of a grace window); Invalid CodeInvalidKey (the id exists but the
	// secret was wrong); Expired CodeKeyExpired; Revoked CodeKeyRevoked;
	// Disabled CodeKeyDisabled, which the chart does not draw as a series
	// of its own but Rejected and Total count.
	Valid, Invalid, Expired, Revoked, Disabled int64
}

// Rejected is the number of verifications that failed.
func (b Bucket) Rejected() int64 { return b.Invalid + b.Expired + b.Revoked + b.Disabled }

// Total is the number of verifications.
func (b Bucket) Total() int64 { return b.Valid + b.Rejected() }

// Step returns the length of a bucket of g (an hour when g is empty or
// unknown).
func Step(g apikey.Granularity) time.Duration {
	switch g {
	case apikey.ByMinute:
		return time.Minute
	case apikey.ByDay:
		return 24 * time.Hour
	}
	return time.Hour
}

// Fill returns one bucket per step of g from the bucket that holds from
// to the one that holds the instant before to, oldest first, with the
// counts of counts (which must be of granularity g) added in.
func Fill(counts []apikey.UsageCount, from, to time.Time, g apikey.Granularity) []Bucket {
	step := Step(g)
	start := from.UTC().Truncate(step)
	if !to.After(from) {
		return nil
	}
	n := int((to.UTC().Add(-time.Nanosecond).Truncate(step).Sub(start))/step) + 1
	if n > 10000 {
		n = 10000
	}
	out := make([]Bucket, n)
	for i := range out {
		out[i].Start = start.Add(time.Duration(i) * step)
	}
	for _, c := range counts {
		i := int(c.Bucket.UTC().Truncate(step).Sub(start) / step)
		if i < 0 || i >= n {
			continue
		}
		switch apikey.Code(c.Outcome) {
		case apikey.CodeValid, apikey.CodeValidPrevious:
			out[i].Valid += c.Count
		case apikey.CodeInvalidKey:
			out[i].Invalid += c.Count
		case apikey.CodeKeyExpired:
			out[i].Expired += c.Count
		case apikey.CodeKeyRevoked:
			out[i].Revoked += c.Count
		case apikey.CodeKeyDisabled:
			out[i].Disabled += c.Count
		}
	}
	return out
}

// Sum adds up buckets.
func Sum(buckets []Bucket) Bucket {
	var t Bucket
	for _, b := range buckets {
		t.Valid += b.Valid
		t.Invalid += b.Invalid
		t.Expired += b.Expired
		t.Revoked += b.Revoked
		t.Disabled += b.Disabled
	}
	return t
}

// Label renders the start of a bucket of g: "2026-12-01" for a day,
// "2026-12-01 14:00" otherwise (UTC).
func Label(t time.Time, g apikey.Granularity) string {
	if g == apikey.ByDay {
		return t.UTC().Format("2006-01-02")
	}
	return t.UTC().Format("2006-01-02 15:04")
}

// Text writes a bar chart for a terminal, one line per bucket: the
// bucket, a bar of width characters at most, "█" for valid and "░" for
// rejected verifications, and the counts. With more than 100 buckets,
// empty ones are left out.
func Text(w io.Writer, buckets []Bucket, g apikey.Granularity, width int) error {
	var max int64
	for _, b := range buckets {
		max = maxOf(max, b.Total())
	}
	skipEmpty := len(buckets) > 100
	var sb strings.Builder
	for _, b := range buckets {
		if skipEmpty && b.Total() == 0 {
			continue
		}
		valid, rejected := 0, 0
		if max > 0 {
			valid = int((b.Valid*int64(width) + max - 1) / max)
			rejected = int((b.Rejected()*int64(width) + max - 1) / max)
			if valid+rejected > width {
				if valid > rejected {
					valid = width - rejected
				} else {
					rejected = width - valid
				}
			}
		}
		bar := strings.Repeat("█", valid) + strings.Repeat("░", rejected)
		fmt.Fprintf(&sb, "%-16s  %s%s  %d valid", Label(b.Start, g), bar, strings.Repeat(" ", width-valid-rejected), b.Valid)
		if b.Rejected() > 0 {
			fmt.Fprintf(&sb, ", %d rejected", b.Rejected())
		}
		sb.WriteByte('\n')
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

func maxOf(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// Chart geometry of the SVG, in its own units (the image scales to its
// container's width).
const (
	svgWidth  = 720
	svgHeight = 220
	padLeft   = 48
	padRight  = 8
	padTop    = 12
	padBottom = 40
)

// segment is one stacked part of a bar.
type segment struct {
	Class string // the outcome's CSS class and pattern
	Y, H  float64
}

// bar is one bucket as drawn.
type bar struct {
	X, W     float64
	Segments []segment
	Title    string // its counts, shown on hover and read by screen readers
}

// tick is a labelled position on an axis.
type tick struct {
	X, Y  float64
	Label string
}

type svgData struct {
	ID                  string
	Title               string
	Width, Height       int
	Left, Bottom, Right float64
	Bars                []bar
	YTicks, XTicks      []tick
	Summary             string
	Empty               bool
	CenterX, CenterY    float64
}

var svgTemplate = template.Must(template.New("svg").Parse(`<svg class="usage-chart" viewBox="0 0 {{.Width}} {{.Height}}" role="img" aria-labelledby="{{.ID}}-title {{.ID}}-desc" xmlns="http://www.w3.org/2000/svg">
<title id="{{.ID}}-title">{{.Title}}</title>
<desc id="{{.ID}}-desc">{{.Summary}}</desc>
<defs>
<pattern id="{{.ID}}-invalid" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff"/><line x1="0" y1="0" x2="0" y2="6" stroke="#b42318" stroke-width="3"/></pattern>
<pattern id="{{.ID}}-expired" width="5" height="5" patternUnits="userSpaceOnUse"><rect width="5" height="5" fill="#fff"/><circle cx="2.5" cy="2.5" r="1.4" fill="#8a5a00"/></pattern>
<pattern id="{{.ID}}-revoked" width="6" height="6" patternUnits="userSpaceOnUse"><rect width="6" height="6" fill="#fff"/><path d="M0 0L6 6M6 0L0 6" stroke="#424a53" stroke-width="1.3"/></pattern>
</defs>
<g class="axis" font-size="11" fill="#424a53">
{{- range .YTicks}}
<line x1="{{$.Left}}" x2="{{$.Right}}" y1="{{.Y}}" y2="{{.Y}}" stroke="#e4e8ec"/>
<text x="{{$.Left}}" dx="-6" y="{{.Y}}" dy="4" text-anchor="end">{{.Label}}</text>
{{- end}}
{{- range .XTicks}}
<text x="{{.X}}" y="{{$.Bottom}}" dy="16" text-anchor="middle">{{.Label}}</text>
{{- end}}
<line x1="{{.Left}}" x2="{{.Right}}" y1="{{.Bottom}}" y2="{{.Bottom}}" stroke="#57606a"/>
</g>
{{- if .Empty}}
<text class="empty" x="{{.CenterX}}" y="{{.CenterY}}" text-anchor="middle" font-size="14" fill="#57606a">No verifications in this period</text>
{{- end}}
<g class="bars">
{{- range .Bars}}
<g class="bar"><title>{{.Title}}</title>
{{- $x := .X}}{{$w := .W}}
{{- range .Segments}}
<rect class="{{.Class}}" x="{{$x}}" y="{{.Y}}" width="{{$w}}" height="{{.H}}" fill="{{if eq .Class "valid"}}#116329{{else}}url(#{{$.ID}}-{{.Class}}){{end}}" stroke="{{if eq .Class "valid"}}#116329{{else}}#424a53{{end}}" stroke-width="0.6"/>
{{- end}}
</g>
{{- end}}
</g>
</svg>`))

// SVG returns an inline SVG bar chart of buckets of granularity g: one
// bar per bucket, its verifications stacked by outcome, each outcome with
// its own pattern. id must be unique in the page (it names the patterns);
// title is the chart's accessible name. Pair it with Legend.
func SVG(id, title string, buckets []Bucket, g apikey.Granularity) template.HTML {
	d := svgData{ID: id, Title: title, Width: svgWidth, Height: svgHeight,
		Left: padLeft, Right: svgWidth - padRight, Bottom: svgHeight - padBottom}
	d.CenterX, d.CenterY = (d.Left+d.Right)/2, (padTop+d.Bottom)/2
	var max int64
	for _, b := range buckets {
		max = maxOf(max, b.Total())
	}
	top := niceCeil(max)
	plotH := d.Bottom - padTop
	for i := 0; i <= 4; i++ {
		v := top * int64(i) / 4
		if i > 0 && v == top*int64(i-1)/4 {
			continue
		}
		d.YTicks = append(d.YTicks, tick{Y: round(d.Bottom - plotH*float64(v)/float64(top)), Label: fmt.Sprint(v)})
	}
	n := len(buckets)
	total := Sum(buckets)
	d.Empty = total.Total() == 0
	d.Summary = fmt.Sprintf("%d buckets from %s: %d valid, %d invalid key, %d expired, %d revoked verifications.",
		n, labelOr(buckets, g), total.Valid, total.Invalid, total.Expired, total.Revoked)
	if n == 0 {
		return render(d)
	}
	slot := (d.Right - d.Left) / float64(n)
	gap := slot * 0.2
	if gap > 4 {
		gap = 4
	}
	labelEvery := (n + 5) / 6
	for i, b := range buckets {
		x := d.Left + slot*float64(i)
		br := bar{X: round(x + gap/2), W: round(slot - gap), Title: fmt.Sprintf("%s: %d valid, %d invalid key, %d expired, %d revoked",
			Label(b.Start, g), b.Valid, b.Invalid, b.Expired, b.Revoked)}
		y := d.Bottom
		for _, s := range []struct {
			class string
			n     int64
		}{{"valid", b.Valid}, {"invalid", b.Invalid}, {"expired", b.Expired}, {"revoked", b.Revoked}} {
			if s.n == 0 {
				continue
			}
			h := plotH * float64(s.n) / float64(top)
			y -= h
			br.Segments = append(br.Segments, segment{Class: s.class, Y: round(y), H: round(h)})
		}
		d.Bars = append(d.Bars, br)
		if i%labelEvery == 0 {
			d.XTicks = append(d.XTicks, tick{X: round(x + slot/2), Label: shortLabel(b.Start, g)})
		}
	}
	return render(d)
}

func render(d svgData) template.HTML {
	var buf bytes.Buffer
	if err := svgTemplate.Execute(&buf, d); err != nil {
		return template.HTML("") // cannot happen: the data is built here
	}
	// The output of html/template is escaped HTML, safe to embed as is.
	return template.HTML(buf.String())
}

func labelOr(buckets []Bucket, g apikey.Granularity) string {
	if len(buckets) == 0 {
		return "-"
	}
	return Label(buckets[0].Start, g) + " to " + Label(buckets[len(buckets)-1].Start, g) + " UTC"
}

// shortLabel is an axis label: the hour for minutes and hours, the date
// for days.
func shortLabel(t time.Time, g apikey.Granularity) string {
	switch g {
	case apikey.ByDay:
		return t.UTC().Format("Jan 2")
	case apikey.ByMinute:
		return t.UTC().Format("15:04")
	}
	return t.UTC().Format("Jan 2 15h")
}

// niceCeil returns a round number at least n (and at least 4), so that
// the axis has four even steps.
func niceCeil(n int64) int64 {
	if n < 4 {
		return 4
	}
	m := int64(1)
	for {
		for _, f := range []int64{1, 2, 4, 5, 8} {
			if v := f * m; v >= n && v%4 == 0 {
				return v
			}
		}
		m *= 10
	}
}

func round(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }

// Legend returns the legend of SVG charts: a swatch with each outcome's
// pattern and its name. id is the id given to SVG.
func Legend(id string) template.HTML {
	var buf bytes.Buffer
	_ = legendTemplate.Execute(&buf, id)
	return template.HTML(buf.String())
}

var legendTemplate = template.Must(template.New("legend").Parse(`<ul class="usage-legend">
<li><svg width="14" height="14" aria-hidden="true"><rect width="14" height="14" fill="#116329"/></svg> valid</li>
<li><svg width="14" height="14" aria-hidden="true"><defs><pattern id="{{.}}-l-invalid" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff"/><line x1="0" y1="0" x2="0" y2="6" stroke="#b42318" stroke-width="3"/></pattern></defs><rect width="14" height="14" fill="url(#{{.}}-l-invalid)" stroke="#424a53"/></svg> invalid key (hatched)</li>
<li><svg width="14" height="14" aria-hidden="true"><defs><pattern id="{{.}}-l-expired" width="5" height="5" patternUnits="userSpaceOnUse"><rect width="5" height="5" fill="#fff"/><circle cx="2.5" cy="2.5" r="1.4" fill="#8a5a00"/></pattern></defs><rect width="14" height="14" fill="url(#{{.}}-l-expired)" stroke="#424a53"/></svg> expired (dotted)</li>
<li><svg width="14" height="14" aria-hidden="true"><defs><pattern id="{{.}}-l-revoked" width="6" height="6" patternUnits="userSpaceOnUse"><rect width="6" height="6" fill="#fff"/><path d="M0 0L6 6M6 0L0 6" stroke="#424a53" stroke-width="1.3"/></pattern></defs><rect width="14" height="14" fill="url(#{{.}}-l-revoked)" stroke="#424a53"/></svg> revoked (crossed)</li>
</ul>`))
