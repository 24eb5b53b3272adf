package apikeyportal

import (
	"context"
	"html/template"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/internal/usagechart"
)

// usageDays is the period of the portal's usage charts.
const usageDays = 7

// maxUsageKeys bounds the keys whose usage the list page adds up.
const maxUsageKeys = 100

// usageView is a usage chart of the portal: an inline SVG drawn on the
// server, its legend and its totals.
type usageView struct {
	Chart  template.HTML
	Legend template.HTML
	Total  usagechart.Bucket
}

// usageOf reads and draws the verifications of the keys over the last
// usageDays days, by day, added up.
func (p *portal) usageOf(ctx context.Context, keys []*apikey.Key, chartID, title string) (*usageView, error) {
	end := p.m.Now().UTC()
	start := end.Add(-usageDays * 24 * time.Hour)
	var all []apikey.UsageCount
	for i, k := range keys {
		if i == maxUsageKeys {
			break
		}
		counts, err := p.m.Usage(ctx, k.ID, start, end, apikey.ByDay)
		if err != nil {
			return nil, err
		}
		all = append(all, counts...)
	}
	b := usagechart.Fill(all, start, end, apikey.ByDay)
	return &usageView{
		Chart:  usagechart.SVG(chartID, title, b, apikey.ByDay),
		Legend: usagechart.Legend(chartID),
		Total:  usagechart.Sum(b),
	}, nil
}
