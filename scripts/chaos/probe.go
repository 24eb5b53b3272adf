package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// prober measures how long a key revoked on B stays accepted by A. Keys
// are made ahead of time: suppliers keep a pool of keys created on B and
// accepted twice by A (so that A caches them); every interval a probe
// takes the oldest, revokes it on B and polls A until A refuses it. So a
// fault that begins after a key was cached, as a frozen connection does,
// is measured with the keys A cached before it.
type prober struct {
	c     *client
	a, b  *instance
	bound time.Duration // a revoked key must be refused this long after the revoke
	watch time.Duration // the longest a probe polls A
	poll  time.Duration // pause between two polls
	quiet time.Duration // a probe ends after the bound once A refused the key this long
	n     atomic.Int64
}

// Limits of the prober.
const (
	maxProbes = 256 // probes in flight
	suppliers = 2   // goroutines that create and warm keys
)

// warmKey is a key of the pool.
type warmKey struct {
	created
	warmed bool // A accepted it twice
}

// run starts a probe every interval until stop is closed, then waits for
// the probes in flight to end (at most watch). pool is how many keys wait
// ready. ctx aborts everything.
func (p *prober) run(ctx context.Context, stop <-chan struct{}, interval time.Duration, pool int) {
	keys := make(chan warmKey, pool)
	sctx, stopSupply := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range suppliers {
		wg.Add(1)
		go func() { defer wg.Done(); p.supply(sctx, keys) }()
	}
	sem := make(chan struct{}, maxProbes)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
		case <-stop:
		case <-tick.C:
			p.start(ctx, keys, sem, &wg)
			continue
		}
		stopSupply()
		wg.Wait()
		return
	}
}

// start starts a probe with the oldest key of the pool, unless the pool
// is empty or too many probes are in flight.
func (p *prober) start(ctx context.Context, keys <-chan warmKey, sem chan struct{}, wg *sync.WaitGroup) {
	select {
	case sem <- struct{}{}:
	default:
		return
	}
	select {
	case k := <-keys:
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.probe(ctx, k)
			<-sem
		}()
	default:
		<-sem
	}
}

// supply creates keys on B, has A accept each twice, and puts them in
// keys until ctx is done.
func (p *prober) supply(ctx context.Context, keys chan<- warmKey) {
	for ctx.Err() == nil {
		k, err := p.c.createKey(ctx, p.b.url(), fmt.Sprintf("probe-%d", p.n.Add(1)))
		if err != nil {
			_ = sleep(ctx, 50*time.Millisecond)
			continue
		}
		warmed := p.c.whoami(ctx, p.a.url(), k.Token, false) == http.StatusOK
		warmed = p.c.whoami(ctx, p.a.url(), k.Token, false) == http.StatusOK && warmed
		select {
		case keys <- warmKey{created: k, warmed: warmed}:
		case <-ctx.Done():
		}
	}
}

// probe revokes k on B and watches A. A probe whose revoke failed records
// nothing (the failure is recorded as an exchange).
func (p *prober) probe(ctx context.Context, k warmKey) {
	revoked, err := p.c.revokeKey(ctx, p.b.url(), k.ID)
	if err != nil {
		return
	}
	res := p.watchKey(ctx, k.Token, revoked)
	res.warmed = k.warmed
	if ctx.Err() == nil {
		p.c.rec.probe(res)
	}
}

// watchKey polls A with token, revoked at revoked. The time of a poll is
// when it was sent: A accepted the key at that instant or later.
func (p *prober) watchKey(ctx context.Context, token string, revoked time.Time) probeResult {
	res := probeResult{revoked: revoked}
	var last time.Time // the last poll A accepted
	for ctx.Err() == nil {
		sent := time.Now()
		since := sent.Sub(revoked)
		if since >= p.watch {
			res.capped = !last.IsZero() && sent.Sub(last) < p.quiet
			break
		}
		if since >= p.bound+p.quiet && (last.IsZero() || sent.Sub(last) >= p.quiet) {
			break
		}
		status := p.c.whoami(ctx, p.a.url(), token, true)
		switch {
		case status == http.StatusOK:
			last = sent
			res.accepted = res.accepted || since > p.bound
		case status == 0:
			_ = sleep(ctx, backoff)
		}
		_ = sleep(ctx, p.poll)
	}
	if !last.IsZero() {
		res.latency = last.Sub(revoked)
	}
	return res
}
