package redislimit

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// batcher is the Redis client that redis_rate sees: it sends the EVALSHA
// of concurrent decisions to Redis together, in one pipeline (one write
// and one read for many decisions), and everything else as it comes.
// There is no goroutine of its own: the first caller that finds fewer than
// maxFlights pipelines in flight sends what is queued, its own call
// included; a later batch is sent by a short-lived goroutine.
type batcher struct {
	redis.UniversalClient
	timeout time.Duration

	mu      sync.Mutex
	queue   []*batchCall
	flights int
}

// maxFlights bounds the pipelines in flight at once; maxBatch the calls
// in one pipeline.
const (
	maxFlights = 4
	maxBatch   = 128
)

type batchCall struct {
	sha  string
	keys []string
	args []any
	cmd  *redis.Cmd // written by the sender before done is closed
	done chan struct{}
}

// EvalSha queues the call and waits for its batch, or for ctx.
func (b *batcher) EvalSha(ctx context.Context, sha string, keys []string, args ...any) *redis.Cmd {
	c := &batchCall{sha: sha, keys: keys, args: args, done: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, c)
	send := b.flights < maxFlights
	var batch []*batchCall
	if send {
		b.flights++
		batch = b.take()
	}
	b.mu.Unlock()
	if send {
		b.send(batch)
	}
	select {
	case <-c.done:
		return c.cmd
	case <-ctx.Done():
		cmd := redis.NewCmd(ctx)
		cmd.SetErr(ctx.Err())
		return cmd
	}
}

// take removes up to maxBatch calls from the queue; b.mu is held.
func (b *batcher) take() []*batchCall {
	n := min(len(b.queue), maxBatch)
	batch := b.queue[:n:n]
	b.queue = b.queue[n:]
	if len(b.queue) == 0 {
		b.queue = nil
	}
	return batch
}

// send sends batch, then, while calls are queued, hands the next batch to
// a goroutine so that the caller returns with its own answer.
func (b *batcher) send(batch []*batchCall) {
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	if len(batch) == 1 {
		// Alone: the command itself, without a pipeline's allocations.
		c := batch[0]
		c.cmd = b.UniversalClient.EvalSha(ctx, c.sha, c.keys, c.args...)
		cancel()
		close(c.done)
	} else {
		pipe := b.UniversalClient.Pipeline()
		cmds := make([]*redis.Cmd, len(batch))
		for i, c := range batch {
			cmds[i] = pipe.EvalSha(ctx, c.sha, c.keys, c.args...)
		}
		_, _ = pipe.Exec(ctx) // each command carries its own error
		cancel()
		for i, c := range batch {
			c.cmd = cmds[i]
			close(c.done)
		}
	}
	b.mu.Lock()
	if len(b.queue) == 0 {
		b.flights--
		b.mu.Unlock()
		return
	}
	next := b.take()
	b.mu.Unlock()
	go b.send(next)
}
