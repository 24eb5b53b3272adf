// Command chaos measures how `apikey serve` behaves under faults. It is
// run by scripts/chaos.sh, by hand, never by the test suite.
//
// It starts a PostgreSQL cluster and a Redis server of its own (on
// -pg-port and -redis-port, loopback only), and two instances A and B of
// `apikey serve` on that database. A reaches PostgreSQL, and Redis in the
// redis variant, through TCP proxies of this program that can freeze its
// connections. While load workers call GET /v1/whoami on both instances
// and burner processes keep every CPU busy, keys are created on B and
// cached by A (A accepts each twice) ahead of time, and every
// -probe-every a probe revokes one of them on B and polls A with it until
// A refuses it. Each fault runs for one phase, with a phase before and
// one after:
//
//	none          baseline under load
//	freeze-pg     A's PostgreSQL connections stay open but carry no byte
//	freeze-redis  the same for A's Redis connections (redis variant)
//	stop-pg       pg_ctl stop -m fast, then start
//	stop-redis    redis-server stopped, then started (redis variant)
//	kill-a        kill -9 of instance A, then a restart on the same port
//
// It prints a Markdown table on standard output: per fault, the revoked
// keys A accepted later than -bound after the revoke (must be 0), the
// responses >= 500 (503s while a store is down counted apart), exchanges
// without a response, the recovery time after the fault, and the
// propagation latency of the revocations made during the fault.
// docs/reliability.md says how to read it.
//
// Usage:
//
//	chaos -apikey BIN -dir DIR [flags]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// config holds the flags.
type config struct {
	apikey     string // the apikey binary
	dir        string // work directory
	variants   []string
	faults     []string // empty means all
	bound      time.Duration
	phase      time.Duration
	workers    int
	burners    int
	probeEvery time.Duration
	poll       time.Duration
	watch      time.Duration
	timeout    time.Duration
	pgBin      string
	pgPort     int
	redisPort  int
}

// allFaults lists the faults in the order they run.
var allFaults = []string{"none", "freeze-pg", "freeze-redis", "stop-pg", "stop-redis", "kill-a"}

func main() {
	if len(os.Args) == 2 && os.Args[1] == burnFlag {
		burn()
	}
	log.SetFlags(log.Ltime)
	log.SetPrefix("chaos: ")
	cfg, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		log.Print(err)
		stop()
		os.Exit(1)
	}
}

// parseFlags reads the command line.
func parseFlags(args []string) (config, error) {
	var cfg config
	var variant, faults string
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.StringVar(&cfg.apikey, "apikey", "", "the apikey binary (required)")
	fs.StringVar(&cfg.dir, "dir", "", "work directory for the databases and logs (required)")
	fs.StringVar(&variant, "variant", "notify", "invalidation between instances: notify (PostgreSQL NOTIFY), redis, or both")
	fs.StringVar(&faults, "faults", "", "comma-separated faults to run (default all of the variant): "+strings.Join(allFaults, ","))
	fs.DurationVar(&cfg.bound, "bound", 2*time.Second, "a revoked key must be refused everywhere this long after the revoke")
	fs.DurationVar(&cfg.phase, "phase", 5*time.Second, "length of each phase: before, during and after each fault")
	fs.IntVar(&cfg.workers, "workers", 8, "load workers calling GET /v1/whoami, half on each instance")
	fs.IntVar(&cfg.burners, "burners", runtime.NumCPU(), "CPU burner processes")
	fs.DurationVar(&cfg.probeEvery, "probe-every", 250*time.Millisecond, "interval between two probes (they overlap)")
	fs.DurationVar(&cfg.poll, "poll", 5*time.Millisecond, "pause between two polls of a revoked key")
	fs.DurationVar(&cfg.watch, "watch", 35*time.Second, "longest a probe polls a revoked key (above serve's 30s cache TTL)")
	fs.DurationVar(&cfg.timeout, "timeout", 5*time.Second, "timeout of one HTTP request")
	fs.StringVar(&cfg.pgBin, "pg-bin", "", "directory of initdb and pg_ctl (default the newest /usr/lib/postgresql/*/bin)")
	fs.IntVar(&cfg.pgPort, "pg-port", 15432, "port of the harness's PostgreSQL")
	fs.IntVar(&cfg.redisPort, "redis-port", 16379, "port of the harness's Redis")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	switch {
	case fs.NArg() > 0:
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case cfg.apikey == "" || cfg.dir == "":
		return cfg, errors.New("-apikey and -dir are required")
	case cfg.bound <= 0 || cfg.phase <= 0 || cfg.watch <= cfg.bound || cfg.probeEvery <= 0:
		return cfg, errors.New("-bound, -phase and -probe-every must be positive, -watch longer than -bound")
	case cfg.workers < 1 || cfg.burners < 0:
		return cfg, errors.New("-workers must be at least 1, -burners at least 0")
	}
	switch variant {
	case "notify", "redis":
		cfg.variants = []string{variant}
	case "both":
		cfg.variants = []string{"notify", "redis"}
	default:
		return cfg, fmt.Errorf("unknown -variant %q: want notify, redis or both", variant)
	}
	if faults != "" {
		for f := range strings.SplitSeq(faults, ",") {
			if !slices.Contains(allFaults, f) {
				return cfg, fmt.Errorf("unknown fault %q: want some of %s", f, strings.Join(allFaults, ","))
			}
			cfg.faults = append(cfg.faults, f)
		}
	}
	return cfg, nil
}

// run starts the databases, runs every variant and prints the table.
func run(ctx context.Context, cfg config) error {
	h, err := newHarness(ctx, cfg)
	if h != nil {
		defer h.close()
	}
	if err != nil {
		return err
	}
	var results []result
	for _, v := range cfg.variants {
		rs, err := h.runVariant(ctx, v)
		results = append(results, rs...)
		if err != nil {
			return fmt.Errorf("variant %s: %w", v, err)
		}
	}
	writeReport(os.Stdout, cfg, results)
	return nil
}

// harness owns the databases, which live across variants.
type harness struct {
	cfg   config
	pids  pidDir
	pg    *pgCluster
	redis *redisServer
	pgUp  bool
}

// newHarness creates and starts the PostgreSQL cluster and, if a variant
// needs it, Redis. On error, the harness returned (if any) must still be
// closed.
func newHarness(ctx context.Context, cfg config) (*harness, error) {
	pids := pidDir(filepath.Join(cfg.dir, "pids"))
	if err := os.MkdirAll(string(pids), 0o755); err != nil {
		return nil, err
	}
	// PostgreSQL runs as the user postgres, which must reach its
	// directories below this one.
	if err := os.Chmod(cfg.dir, 0o711); err != nil {
		return nil, err
	}
	pg, err := newPGCluster(cfg.pgBin, cfg.dir, cfg.pgPort)
	if err != nil {
		return nil, err
	}
	h := &harness{cfg: cfg, pids: pids, pg: pg}
	log.Printf("PostgreSQL: initdb and start on %s (%s)", pg.addr(), pg.bin)
	if err := pg.init(ctx); err != nil {
		return h, err
	}
	h.pgUp = true // from here on, close stops it, should start fail half-way
	if err := pg.start(ctx); err != nil {
		return h, err
	}
	if slices.Contains(cfg.variants, "redis") {
		h.redis = &redisServer{dir: cfg.dir, port: cfg.redisPort, pids: pids}
		log.Printf("Redis: start on %s", h.redis.addr())
		if err := h.redis.start(ctx); err != nil {
			return h, err
		}
	}
	return h, nil
}

// close stops what the harness started.
func (h *harness) close() {
	if h.redis != nil {
		h.redis.stop()
	}
	if h.pgUp {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := h.pg.stop(ctx, "immediate"); err != nil {
			log.Printf("stopping PostgreSQL: %v", err)
		}
	}
}

// deployment is one variant's pair of instances and A's proxies.
type deployment struct {
	variant    string
	a, b       *instance
	pgProxy    *proxy
	redisProxy *proxy // nil in the notify variant
}

// deploy starts A (behind the proxies) and B on the harness's databases.
func (h *harness) deploy(ctx context.Context, variant string) (*deployment, error) {
	d := &deployment{variant: variant}
	var err error
	if d.pgProxy, err = newProxy(h.pg.addr()); err != nil {
		return d, err
	}
	argsA := []string{"--db", h.pg.url(d.pgProxy.addr())}
	argsB := []string{"--db", h.pg.url(h.pg.addr())}
	if variant == "redis" {
		if d.redisProxy, err = newProxy(h.redis.addr()); err != nil {
			return d, err
		}
		argsA = append(argsA, "--redis", d.redisProxy.addr())
		argsB = append(argsB, "--redis", h.redis.addr())
	}
	d.b = &instance{name: variant + "-b", bin: h.cfg.apikey, args: argsB, dir: h.cfg.dir, pids: h.pids}
	d.a = &instance{name: variant + "-a", bin: h.cfg.apikey, args: argsA, dir: h.cfg.dir, pids: h.pids}
	for _, in := range []*instance{d.b, d.a} { // B migrates the database first
		if err := in.start(ctx); err != nil {
			return d, err
		}
		log.Printf("%s: %s", in.name, in.url())
	}
	return d, nil
}

// close stops the instances and the proxies.
func (d *deployment) close() {
	for _, in := range []*instance{d.a, d.b} {
		if in != nil {
			in.stop()
		}
	}
	for _, p := range []*proxy{d.pgProxy, d.redisProxy} {
		if p != nil {
			p.close()
		}
	}
}
