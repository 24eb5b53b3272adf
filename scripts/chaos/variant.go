package main

import (
	"context"
	"fmt"
	"log"
	"slices"
	"sync"
	"time"
)

// loadKeys is how many valid keys the load workers share.
const loadKeys = 4

// fault is something that goes wrong for one phase.
type fault struct {
	name      string
	storeDown bool // takes PostgreSQL or Redis away from an instance
	start     func(ctx context.Context) error
	end       func(ctx context.Context) error
}

// faults returns the faults of d's variant that cfg asks for, in order.
func (h *harness) faults(d *deployment) []fault {
	nop := func(context.Context) error { return nil }
	all := []fault{
		{name: "none", start: nop, end: nop},
		{name: "freeze-pg", storeDown: true,
			start: func(context.Context) error { d.pgProxy.freeze(); return nil },
			end:   func(context.Context) error { d.pgProxy.thaw(); return nil }},
		{name: "stop-pg", storeDown: true,
			start: func(ctx context.Context) error { return h.pg.stop(ctx, "fast") },
			end:   h.pg.start},
		{name: "kill-a",
			start: func(context.Context) error { d.a.kill(); return nil },
			end:   d.a.start},
	}
	if d.redisProxy != nil {
		all = append(all,
			fault{name: "freeze-redis", storeDown: true,
				start: func(context.Context) error { d.redisProxy.freeze(); return nil },
				end:   func(context.Context) error { d.redisProxy.thaw(); return nil }},
			fault{name: "stop-redis", storeDown: true,
				start: func(context.Context) error { h.redis.stop(); return nil },
				end:   h.redis.start})
	}
	var out []fault
	for _, name := range allFaults {
		if len(h.cfg.faults) > 0 && !slices.Contains(h.cfg.faults, name) {
			continue
		}
		for _, f := range all {
			if f.name == name {
				out = append(out, f)
			}
		}
	}
	return out
}

// runVariant deploys A and B with the variant's invalidation, puts them
// under load, runs the faults one after the other with probes throughout,
// and returns a result per fault (those that completed, on error).
func (h *harness) runVariant(ctx context.Context, variant string) ([]result, error) {
	log.Printf("variant %s", variant)
	d, err := h.deploy(ctx, variant)
	defer d.close()
	if err != nil {
		return nil, err
	}
	rec := newRecorder()
	admin, err := createAdminKey(ctx, h.cfg.apikey, h.pg.url(h.pg.addr()))
	if err != nil {
		return nil, err
	}
	c := newClient(admin, h.cfg.timeout, rec)
	keys, err := createLoadKeys(ctx, c, d.b.url())
	if err != nil {
		return nil, err
	}
	bs, err := startBurners(h.cfg.burners, h.pids)
	if err != nil {
		return nil, err
	}
	defer bs.stop()

	loadCtx, stopLoad := context.WithCancel(ctx)
	var load sync.WaitGroup
	runLoad(loadCtx, c, []string{d.a.url(), d.b.url()}, keys, h.cfg.workers, &load)
	p := &prober{c: c, a: d.a, b: d.b, bound: h.cfg.bound, watch: h.cfg.watch, poll: h.cfg.poll, quiet: 500 * time.Millisecond}
	stopProbes := make(chan struct{})
	probed := make(chan struct{})
	pool := min(max(int(h.cfg.phase/h.cfg.probeEvery), 4), 200) // a phase's worth
	go func() { p.run(ctx, stopProbes, h.cfg.probeEvery, pool); close(probed) }()

	var cycles []cycle
	for _, f := range h.faults(d) {
		var c cycle
		if c, err = h.cycle(ctx, variant, f); err != nil {
			err = fmt.Errorf("fault %s: %w", f.name, err)
			break
		}
		cycles = append(cycles, c)
	}
	log.Printf("waiting for the probes in flight (at most %s)", h.cfg.watch)
	close(stopProbes)
	<-probed
	stopLoad()
	load.Wait()

	results := make([]result, len(cycles))
	for i, c := range cycles {
		results[i] = rec.summarize(c)
	}
	return results, err
}

// createLoadKeys creates the keys of the load workers on base.
func createLoadKeys(ctx context.Context, c *client, base string) ([]string, error) {
	var keys []string
	for i := range loadKeys {
		k, err := c.createKey(ctx, base, fmt.Sprintf("load-%d", i))
		if err != nil {
			return nil, err
		}
		keys = append(keys, k.Token)
	}
	return keys, nil
}

// cycle runs a phase without fault, a phase with f and a phase after
// it, and returns when each began and ended.
func (h *harness) cycle(ctx context.Context, variant string, f fault) (cycle, error) {
	c := cycle{variant: variant, fault: f.name, storeDown: f.storeDown, begin: time.Now()}
	log.Printf("%s/%s: before", variant, f.name)
	if err := sleep(ctx, h.cfg.phase); err != nil {
		return c, err
	}
	log.Printf("%s/%s: fault", variant, f.name)
	c.faultStart = time.Now()
	if err := f.start(ctx); err != nil {
		return c, err
	}
	if err := sleep(ctx, time.Until(c.faultStart.Add(h.cfg.phase))); err != nil {
		return c, err
	}
	log.Printf("%s/%s: after", variant, f.name)
	c.faultEnd = time.Now()
	if err := f.end(ctx); err != nil {
		return c, err
	}
	c.restored = time.Now()
	if err := sleep(ctx, time.Until(c.faultEnd.Add(h.cfg.phase))); err != nil {
		return c, err
	}
	c.end = time.Now()
	return c, nil
}
