package admin

import (
	"context"
	"html/template"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/internal/usagechart"
)

func init() { funcs["lower"] = strings.ToLower }

// usagePeriod is one of the periods a usage chart can show.
type usagePeriod struct {
	Param string // the value of ?period=
	Label string
	Span  time.Duration
	G     apikey.Granularity
}

// usagePeriods are the periods offered, the first the default.
var usagePeriods = []usagePeriod{
	{"24h", "Last 24 hours", 24 * time.Hour, apikey.ByHour},
	{"7d", "Last 7 days", 7 * 24 * time.Hour, apikey.ByDay},
	{"30d", "Last 30 days", 30 * 24 * time.Hour, apikey.ByDay},
}

// periodOf returns the period named by the request's ?period=, or the
// default.
func periodOf(r *http.Request) usagePeriod {
	p := r.URL.Query().Get("period")
	for _, up := range usagePeriods {
		if up.Param == p {
			return up
		}
	}
	return usagePeriods[0]
}

// usageView is a usage chart as a page shows it.
type usageView struct {
	Period  usagePeriod
	Periods []usagePeriod
	Chart   template.HTML
	Legend  template.HTML
	Total   usagechart.Bucket
	Buckets []usagechart.Bucket // for the table under the chart
	Label   func(time.Time) string
}

// usageOf reads the usage of the keys ids over the period ending at now,
// added up, and draws it. chartID must be unique in the page.
func (h *handler) usageOf(ctx context.Context, ids []string, p usagePeriod, chartID, title string) (*usageView, error) {
	end := usageEnd(h.m.Now())
	start := end.Add(-p.Span)
	var all []apikey.UsageCount
	for _, id := range ids {
		counts, err := h.m.Usage(ctx, id, start, end, p.G)
		if err != nil {
			return nil, err
		}
		all = append(all, counts...)
	}
	buckets := usagechart.Fill(all, start, end, p.G)
	return &usageView{
		Period: p, Periods: usagePeriods,
		Chart:  usagechart.SVG(chartID, title+", "+p.Label+" (UTC)", buckets, p.G),
		Legend: usagechart.Legend(chartID),
		Total:  usagechart.Sum(buckets), Buckets: buckets,
		Label: func(t time.Time) string { return usagechart.Label(t, p.G) },
	}, nil
}

// usageEnd is the exclusive end of a usage query that runs up to now:
// the end of the current minute. Usage is counted in minute buckets,
// and a query ending at now itself would leave out the current minute
// whenever now falls on a minute's first instant.
func usageEnd(now time.Time) time.Time {
	return now.UTC().Truncate(time.Minute).Add(time.Minute)
}

// maxScanned bounds the keys the overview reads, so that it stays quick
// on a large database; the page says when it saw only part of them.
const maxScanned = 2000

// maxTraffic bounds the keys whose usage the overview reads to rank them.
const maxTraffic = 200

// homeData is the overview page.
type homeData struct {
	Counts   map[string]int // by state
	Total    int
	Partial  bool // more keys than maxScanned: the counts are of the newest
	Expiring []*apikey.Key
	Unused   []*apikey.Key
	Top      []keyTraffic
	TopOf    int // how many keys were ranked
	Now      time.Time
}

// keyTraffic is a key with its verifications over the last 7 days.
type keyTraffic struct {
	Key      *apikey.Key
	Valid    int64
	Rejected int64
}

// home serves the overview: keys by state, keys expiring within 14 days,
// active keys unused for 30 days, and the keys with the most traffic over
// the last 7 days.
func (h *handler) home(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := actor(r.Context(), s)
	now := h.m.Now()
	d := homeData{Counts: map[string]int{}, Now: now}
	var active []*apikey.Key
	f := apikey.KeyFilter{Limit: apikey.MaxPageSize}
	for {
		page, err := h.m.List(ctx, f)
		if err != nil {
			h.fail(w, r, s, err)
			return
		}
		for _, k := range page.Keys {
			d.Counts[string(k.State)]++
			d.Total++
			if k.State != apikey.StateActive {
				continue
			}
			active = append(active, k)
			if k.ExpiresAt != nil && k.ExpiresAt.Sub(now) <= 14*24*time.Hour {
				d.Expiring = append(d.Expiring, k)
			}
			last := k.CreatedAt
			if k.LastUsedAt != nil {
				last = *k.LastUsedAt
			}
			if now.Sub(last) >= 30*24*time.Hour {
				d.Unused = append(d.Unused, k)
			}
		}
		if page.NextCursor == "" {
			break
		}
		if d.Total >= maxScanned {
			d.Partial = true
			break
		}
		f.Cursor = page.NextCursor
	}
	sort.Slice(d.Expiring, func(i, j int) bool { return d.Expiring[i].ExpiresAt.Before(*d.Expiring[j].ExpiresAt) })
	// The most recently used keys are the candidates for the most traffic.
	slices.SortStableFunc(active, func(a, b *apikey.Key) int {
		return lastUsed(b).Compare(lastUsed(a))
	})
	if len(active) > maxTraffic {
		active = active[:maxTraffic]
	}
	d.TopOf = len(active)
	for _, k := range active {
		if k.LastUsedAt == nil || now.Sub(*k.LastUsedAt) > 7*24*time.Hour {
			continue
		}
		end := usageEnd(now)
		counts, err := h.m.Usage(ctx, k.ID, end.Add(-7*24*time.Hour), end, apikey.ByDay)
		if err != nil {
			h.fail(w, r, s, err)
			return
		}
		t := keyTraffic{Key: k}
		for _, c := range counts {
			if c.Outcome == string(apikey.CodeValid) || c.Outcome == string(apikey.CodeValidPrevious) {
				t.Valid += c.Count
			} else {
				t.Rejected += c.Count
			}
		}
		if t.Valid+t.Rejected > 0 {
			d.Top = append(d.Top, t)
		}
	}
	sort.SliceStable(d.Top, func(i, j int) bool {
		return d.Top[i].Valid+d.Top[i].Rejected > d.Top[j].Valid+d.Top[j].Rejected
	})
	if len(d.Top) > 10 {
		d.Top = d.Top[:10]
	}
	h.render(w, r, http.StatusOK, "home", view{Title: "Overview", User: s.email, Nav: "home", Data: d})
}

func lastUsed(k *apikey.Key) time.Time {
	if k.LastUsedAt == nil {
		return time.Time{}
	}
	return *k.LastUsedAt
}

// ownerKeys returns the keys of owner (at most maxScanned: partial says
// there are more) and their usage over the period of r, added up, for the
// owner's page.
func (h *handler) ownerKeys(ctx context.Context, r *http.Request, owner string) (keys []*apikey.Key, partial bool, u *usageView, err error) {
	f := apikey.KeyFilter{Owner: owner, Limit: apikey.MaxPageSize}
	for {
		page, err := h.m.List(ctx, f)
		if err != nil {
			return nil, false, nil, err
		}
		keys = append(keys, page.Keys...)
		if page.NextCursor == "" {
			break
		}
		if len(keys) >= maxScanned {
			partial = true
			break
		}
		f.Cursor = page.NextCursor
	}
	ids := make([]string, 0, len(keys))
	for _, k := range keys {
		if len(ids) < maxTraffic {
			ids = append(ids, k.ID)
		}
	}
	u, err = h.usageOf(ctx, ids, periodOf(r), "owner-usage", "Verifications of the keys of "+owner)
	return keys, partial, u, err
}
