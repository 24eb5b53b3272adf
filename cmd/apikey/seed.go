package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/go-apikey/apikey"
)

func init() { register(newSeedCommand) }

// bulkInserter is the fast insert path of both stores.
type bulkInserter interface {
	BulkInsert(ctx context.Context, recs []*apikey.Record) error
}

func newSeedCommand(a *app) *cobra.Command {
	var (
		owners, batch int
		printSample   bool
		asJSON        bool
	)
	cmd := &cobra.Command{
		Use:   "seed N [--owner-count K] [--batch B] [--print-sample] [--json]",
		Short: "Bulk-load N synthetic keys, for load tests",
		Long: `Bulk-load N synthetic keys into the database, for benchmarks and load
tests: names seed-0, seed-1, ..., owners owner-0 to owner-(K-1), no scopes,
no expiry. Each is a real key made as "apikey create" makes one: a random
id and secret under APIKEY_PREFIX, hashed with the current APIKEY_PEPPER.
The plaintexts are thrown away, except one with --print-sample, printed on
standard output.

Rows are written in batches of B: one transaction with a prepared statement
on SQLite, one COPY on PostgreSQL. Owner limits are not checked and nothing
is written to the audit log. A progress bar is drawn on standard error when
it is a terminal, else a line a second.

--json prints, when done, one JSON object on standard output:
  {"count", "elapsed_seconds", "keys_per_second", "sample"}
with "sample" (the seeded key) only with --print-sample.`,
		Example: `  apikey seed 1000000 --db postgres://postgres@127.0.0.1/test --print-sample`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("seed needs exactly one argument: the number of keys")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.Atoi(args[0])
			if err != nil || n < 1 {
				return usagef("invalid number of keys %q: want a whole number of at least 1", args[0])
			}
			if owners < 1 {
				return usagef("invalid --owner-count %d: must be at least 1", owners)
			}
			if batch < 1 || batch > 1_000_000 {
				return usagef("invalid --batch %d: must be from 1 to 1000000", batch)
			}
			cfg, err := a.config()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			db, err := a.openDB(ctx)
			if err != nil {
				return err
			}
			if err := db.migrate(ctx); err != nil {
				return err
			}
			bi, ok := db.store.(bulkInserter)
			if !ok {
				return fmt.Errorf("the %s store cannot bulk-load", db.loc.driver)
			}
			// A Manager that only makes records: no background work.
			cfg.UsageFlushInterval = -1
			m, err := apikey.NewManager(db.store, cfg)
			if err != nil {
				return err
			}
			defer m.Close(context.WithoutCancel(ctx))
			s := &seeder{m: m, owners: owners}
			p := newProgress(a.stderr, "seed", n)
			sample, err := s.run(ctx, bi, n, batch, p.update)
			p.done()
			if err != nil {
				return fmt.Errorf("seeding: %w", err)
			}
			if asJSON {
				elapsed := time.Since(p.start)
				rep := seedReport{Count: n, ElapsedSeconds: elapsed.Round(time.Millisecond).Seconds(),
					KeysPerSecond: math.Round(float64(n) / max(elapsed.Seconds(), 1e-9))}
				if printSample {
					rep.Sample = sample
				}
				return writeJSON(a.stdout, rep)
			}
			if printSample {
				fmt.Fprintln(a.stdout, sample)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&owners, "owner-count", 100, "number of distinct owners, assigned round-robin")
	f.IntVar(&batch, "batch", 5000, "rows per transaction (SQLite) or COPY (PostgreSQL)")
	f.BoolVar(&printSample, "print-sample", false, "print one seeded key (the first) on standard output")
	f.BoolVar(&asJSON, "json", false, `print JSON: {"count", "elapsed_seconds", "keys_per_second", "sample" (with --print-sample)}`)
	return cmd
}

// seedReport is the JSON form of the result of "seed --json".
type seedReport struct {
	Count          int     `json:"count"`
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	KeysPerSecond  float64 `json:"keys_per_second"`
	Sample         string  `json:"sample,omitempty"`
}

// seeder makes synthetic records.
type seeder struct {
	m      *apikey.Manager
	owners int
}

// run generates n records in batches, on a goroutine of their own so that
// generation overlaps the writes, and inserts them. It reports the count
// written after each batch and returns the first key.
func (s *seeder) run(ctx context.Context, bi bulkInserter, n, batch int, progress func(done int)) (sample string, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type work struct {
		recs []*apikey.Record
		err  error
	}
	batches := make(chan work, 2)
	first := make(chan string, 1)
	go func() {
		defer close(batches)
		for lo := 0; lo < n; lo += batch {
			recs := make([]*apikey.Record, min(batch, n-lo))
			for i := range recs {
				token, rec, err := s.record(lo + i)
				if err != nil {
					batches <- work{err: err}
					return
				}
				if lo+i == 0 {
					first <- token
				}
				recs[i] = rec
			}
			select {
			case batches <- work{recs: recs}:
			case <-ctx.Done():
				return
			}
		}
	}()
	done := 0
	for w := range batches {
		if w.err != nil {
			return "", w.err
		}
		if err := bi.BulkInsert(ctx, w.recs); err != nil {
			return "", err
		}
		done += len(w.recs)
		progress(done)
	}
	return <-first, nil
}

// record returns the i-th synthetic key and its record, made by the
// Manager as Create would make it.
func (s *seeder) record(i int) (string, *apikey.Record, error) {
	rec, token, err := s.m.NewRecord(apikey.CreateParams{
		Name: "seed-" + strconv.Itoa(i), Owner: "owner-" + strconv.Itoa(i%s.owners),
	})
	return token, rec, err
}

// progress draws the progress of a bulk load (seed, import) on w: a bar redrawn in place
// at most ten times a second on a terminal, else a plain line a second.
type progress struct {
	w        io.Writer
	label    string // the command: "seed", "import"
	tty      bool
	total    int
	start    time.Time
	last     time.Time
	n        int
	finished bool
}

func newProgress(w io.Writer, label string, total int) *progress {
	return &progress{w: w, label: label, tty: isTerminalWriter(w), total: total, start: time.Now()}
}

// isTerminalWriter reports whether w is a character device.
func isTerminalWriter(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (p *progress) update(done int) {
	p.n = done
	now := time.Now()
	every := time.Second
	if p.tty {
		every = 100 * time.Millisecond
	}
	if done < p.total && now.Sub(p.last) < every {
		return
	}
	p.last = now
	p.draw(now)
}

func (p *progress) draw(now time.Time) {
	const width = 30
	frac := 1.0
	if p.total > 0 {
		frac = float64(p.n) / float64(p.total)
	}
	rate := float64(p.n) / max(now.Sub(p.start).Seconds(), 1e-9)
	if !p.tty {
		fmt.Fprintf(p.w, "%s: %d/%d (%.0f%%) %.0f keys/s\n", p.label, p.n, p.total, 100*frac, rate)
		return
	}
	filled := int(frac * width)
	bar := strings.Repeat("=", filled)
	if filled < width {
		bar += ">" + strings.Repeat(" ", width-filled-1)
	}
	fmt.Fprintf(p.w, "\r[%s] %3.0f%% %d/%d %.0f keys/s", bar, 100*frac, p.n, p.total, rate)
}

// done ends the bar and prints the total rate.
func (p *progress) done() {
	if p.finished {
		return
	}
	p.finished = true
	elapsed := time.Since(p.start)
	if p.tty {
		fmt.Fprintln(p.w)
	}
	fmt.Fprintf(p.w, "%s: %d keys in %v (%.0f keys/s)\n", p.label, p.n, elapsed.Round(time.Millisecond), float64(p.n)/max(elapsed.Seconds(), 1e-9))
}
