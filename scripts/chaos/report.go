package main

import (
	"fmt"
	"io"
	"runtime"
	"time"
)

// writeReport writes the results as a Markdown table, with a line that
// says how they were measured.
func writeReport(w io.Writer, cfg config, results []result) {
	fmt.Fprintf(w, "Bound %s; phases of %s before, during and after each fault; %d load workers, %d CPU burners on %d CPUs; a probe every %s.\n\n",
		cfg.bound, cfg.phase, cfg.workers, cfg.burners, runtime.NumCPU(), cfg.probeEvery)
	fmt.Fprintf(w, "| variant | fault | requests | revoked keys accepted after %s | >= 500 | 503 (store down) | no response | other errors | recovery | probes | p50 | p99 | max |\n", cfg.bound)
	fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, r := range results {
		fmt.Fprintf(w, "| %s | %s | %d | %d | %d | %s | %d | %d | %s | %d | %s | %s | %s |\n",
			r.variant, r.fault, r.requests, r.accepted, r.serverErrors, storeDown(r), r.noAnswer, r.unexpected,
			recovery(r), r.probes, latency(r, r.p50), latency(r, r.p99), maxLatency(r, cfg.watch))
	}
}

// storeDown is the 503 count, or "-" for a fault that takes no store
// down.
func storeDown(r result) string {
	if !r.storeDown {
		return "-"
	}
	return fmt.Sprint(r.storeDown503)
}

// recovery formats the recovery time.
func recovery(r result) string {
	if !r.recovered {
		return fmt.Sprintf("not in %s", ms(r.end.Sub(r.faultEnd)))
	}
	return ms(r.recovery)
}

// latency formats a percentile, "-" without probes.
func latency(r result, d time.Duration) string {
	if r.probes == 0 {
		return "-"
	}
	return ms(d)
}

// maxLatency formats the maximum, marked ">=" when a probe was still
// accepted when its watch ended.
func maxLatency(r result, watch time.Duration) string {
	if r.capped {
		return ">= " + ms(watch)
	}
	return latency(r, r.max)
}

// ms formats d to the millisecond.
func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }
