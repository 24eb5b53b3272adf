package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// backoff is how long a worker or a prober waits after an exchange that
// got no response, so as not to spin on a refused port.
const backoff = 10 * time.Millisecond

// runLoad runs workers that call GET /v1/whoami with valid keys, half on
// each of urls[0] and urls[1] in turn, until ctx is done; it returns at
// once, and wg is done when all have stopped.
func runLoad(ctx context.Context, c *client, urls []string, keys []string, workers int, wg *sync.WaitGroup) {
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			base, key := urls[i%len(urls)], keys[i%len(keys)]
			for ctx.Err() == nil {
				if c.whoami(ctx, base, key, false) == 0 {
					_ = sleep(ctx, backoff)
				}
			}
		}()
	}
}

// burnFlag is the hidden argument that makes the harness's own binary a
// CPU burner.
const burnFlag = "-burn"

// burn spins one core forever.
func burn() {
	for {
	}
}

// burners are processes that keep every core busy, so that the service
// is measured under CPU contention.
type burners []*child

// startBurners starts n copies of the harness's binary as burners.
func startBurners(n int, pids pidDir) (burners, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var bs burners
	for i := range n {
		cmd := exec.Command(self, burnFlag)
		cmd.Env = append(childEnv(), "GOMAXPROCS=1")
		c, err := startChild(cmd, fmt.Sprintf("burner-%d", i), pids)
		if err != nil {
			bs.stop()
			return nil, err
		}
		bs = append(bs, c)
	}
	return bs, nil
}

// stop kills the burners.
func (bs burners) stop() {
	for _, c := range bs {
		c.stop(syscall.SIGKILL, 0)
	}
}
