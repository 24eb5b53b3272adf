// Command webhookbench measures how fast `apikey serve` delivers webhooks:
// it queues N key.created events for one endpoint while no instance sends
// (serve --no-webhook-worker, keys created through the API), then starts
// one instance that sends and times the deliveries to a real local
// receiver, which verifies every signature and counts each event once. It
// is run by scripts/webhookbench.sh, by hand.
//
//	go run ./scripts/webhookbench -apikey ./apikey -db sqlite:/tmp/x.db -n 10000
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-apikey/apikey/webhook"
)

var (
	bin     = flag.String("apikey", "./apikey", "the apikey binary")
	db      = flag.String("db", "", "database (--db of apikey); fresh")
	n       = flag.Int("n", 10000, "events to deliver")
	clients = flag.Int("clients", 16, "concurrent API clients while queueing")
	extra   = flag.String("serve-flags", "", "more flags of the sending serve, space-separated")
)

func apikey(args ...string) []byte {
	cmd := exec.Command(*bin, args...)
	cmd.Env = append(os.Environ(), "APIKEY_DB="+*db)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		log.Fatalf("apikey %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

var listening = regexp.MustCompile(`apikey: listening on (http://\S+)`)

// serve starts apikey serve and returns its process and URL.
func serve(flags ...string) (*exec.Cmd, string) {
	cmd := exec.Command(*bin, append([]string{"serve", "--addr", "127.0.0.1:0", "--schedule-interval", "0", "--log-level", "warn"}, flags...)...)
	cmd.Env = append(os.Environ(), "APIKEY_DB="+*db)
	logf, err := os.CreateTemp("", "webhookbench-serve-*.log")
	if err != nil {
		log.Fatal(err)
	}
	pipe, err := cmd.StderrPipe()
	if err != nil {
		log.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	select {
	case u := <-addr:
		return cmd, u
	case <-time.After(60 * time.Second):
		log.Fatal("serve did not start")
	}
	return nil, ""
}

func stop(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
}

func main() {
	flag.Parse()
	log.SetFlags(0)
	var (
		secret    webhook.Secret
		mu        sync.Mutex
		seen      = map[int64]bool{}
		bad       atomic.Int64
		first     atomic.Int64
		requests  atomic.Int64
		done      = make(chan struct{})
		want      = *n + 1 // the admin key's key.created too
		closeOnce sync.Once
	)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	rcv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		requests.Add(1)
		first.CompareAndSwap(0, time.Now().UnixNano())
		if err := webhook.Verify(r.Header, body, time.Now(), 0, secret); err != nil {
			bad.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var p struct {
			Data struct {
				EventID int64 `json:"event_id"`
			} `json:"data"`
		}
		_ = json.Unmarshal(body, &p)
		mu.Lock()
		seen[p.Data.EventID] = true
		if len(seen) >= want {
			closeOnce.Do(func() { close(done) })
		}
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = rcv.Serve(ln) }()

	var ep struct{ Secret string }
	if err := json.Unmarshal(apikey("webhook", "create", "http://"+ln.Addr().String()+"/hooks", "--event", "key.created", "--json"), &ep); err != nil {
		log.Fatal(err)
	}
	if secret, err = webhook.ParseSecret(ep.Secret); err != nil {
		log.Fatal(err)
	}
	admin := strings.TrimSpace(string(apikey("create", "--name", "bench-admin", "--scope", "apikey:admin")))

	// Queue the events with no sender running.
	q, url := serve("--no-webhook-worker")
	start := time.Now()
	var next, retried atomic.Int64
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *clients}}
	for range *clients {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(*n); i = next.Add(1) {
			retry:
				req, _ := http.NewRequest("POST", url+"/v1/keys", strings.NewReader(fmt.Sprintf(`{"name":"bench-%d"}`, i)))
				req.Header.Set("Authorization", "Bearer "+admin)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					log.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusServiceUnavailable && retried.Add(1) < 100 {
					goto retry // the database unavailable; SQLite's writes no longer fail with "database is locked" (docs/reliability.md)
				}
				if resp.StatusCode != 201 {
					log.Fatalf("create: %d %s", resp.StatusCode, b)
				}
			}
		})
	}
	wg.Wait()
	stop(q)
	fmt.Printf("queued %d events in %.2fs (%.0f/s, %d clients through the API, %d creates retried after a 503)\n", *n, time.Since(start).Seconds(), float64(*n)/time.Since(start).Seconds(), *clients, retried.Load())

	// Deliver them.
	var flags []string
	if *extra != "" {
		flags = strings.Fields(*extra)
	}
	start = time.Now()
	s, _ := serve(flags...)
	listening := time.Now()
	select {
	case <-done:
	case <-time.After(10 * time.Minute):
		log.Fatalf("only %d of %d events delivered in 10 minutes", len(seen), want)
	}
	end := time.Now()
	stop(s)
	firstAt := time.Unix(0, first.Load())
	fmt.Printf("delivered %d events (%d requests, %d bad signatures) in %.2fs from serve's start (%.0f/s); %.2fs from the first delivery (%.0f/s); start-up %.2fs\n",
		want, requests.Load(), bad.Load(), end.Sub(start).Seconds(), float64(want)/end.Sub(start).Seconds(),
		end.Sub(firstAt).Seconds(), float64(want)/end.Sub(firstAt).Seconds(), listening.Sub(start).Seconds())
}
