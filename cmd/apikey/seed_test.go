package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/postgres"
	"github.com/go-apikey/apikey/sqlite"
)

// openStore opens the store at db (a --db value) for a test.
func openStore(t *testing.T, db string) apikey.Store {
	t.Helper()
	ctx := context.Background()
	if strings.HasPrefix(db, "postgres://") {
		s, err := postgres.Open(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		return s
	}
	s, err := sqlite.Open(ctx, strings.TrimPrefix(db, "sqlite:"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestSeed seeds keys on each backend and checks that they are real keys:
// the sample verifies, with the CLI and with a Manager without pepper,
// and nothing reached the audit log.
func TestSeed(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			db := databaseFor(t, backend)
			e := newEnv(t)
			e.vars["APIKEY_DB"] = db
			r := e.run("seed", "53", "--batch", "10", "--owner-count", "4", "--print-sample")
			if r.code != 0 {
				t.Fatalf("seed: %+v", r)
			}
			sample := strings.TrimSpace(r.stdout)
			if _, err := apikey.ParseToken(sample); err != nil || strings.Count(r.stdout, "\n") != 1 {
				t.Fatalf("sample %q: %v", r.stdout, err)
			}
			// stderr is not a terminal here: plain lines, the last with the
			// total.
			if !strings.Contains(r.stderr, "seed: 53/53 (100%)") || !strings.Contains(r.stderr, "seed: 53 keys in ") || strings.Contains(r.stderr, "\r") {
				t.Errorf("progress: %q", r.stderr)
			}

			if v := e.run("verify", sample); v.code != 0 {
				t.Errorf("CLI verify of the sample: %+v", v)
			}
			store := openStore(t, db)
			m, err := apikey.NewManager(store, apikey.Config{UsageFlushInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			k, err := m.Verify(context.Background(), sample)
			if err != nil {
				t.Fatalf("Manager.Verify of the sample: %v", err)
			}
			if k.Name != "seed-0" || k.Owner != "owner-0" || k.Prefix != "ak" {
				t.Errorf("sample key %+v", k)
			}
			ctx := context.Background()
			total := 0
			for o := range 4 {
				var page *apikey.Page
				page, err = m.List(ctx, apikey.KeyFilter{Owner: "owner-" + string(rune('0'+o)), Limit: 100})
				if err != nil {
					t.Fatal(err)
				}
				total += len(page.Keys)
				if n := len(page.Keys); n < 13 || n > 14 {
					t.Errorf("owner-%d holds %d keys, want 13 or 14", o, n)
				}
			}
			if total != 53 {
				t.Errorf("%d keys seeded, want 53", total)
			}
			evs, err := m.Events(ctx, apikey.EventFilter{})
			if err != nil || len(evs.Events) != 0 {
				t.Errorf("seeding wrote audit entries: %+v %v", evs, err)
			}
		})
	}
}

// TestSeedHashesAsTheManager checks that seeded keys are made as "apikey
// create" makes them: under APIKEY_PREFIX and hashed with the current
// pepper, so that their first verification has nothing to rehash.
func TestSeedHashesAsTheManager(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.vars["APIKEY_PREFIX"] = "seed_co"
	e.vars["APIKEY_PEPPER"] = "2:new-pepper-0123456789, 1:old-pepper-0123456789"
	r := e.run("seed", "3", "--print-sample")
	if r.code != 0 {
		t.Fatalf("seed: %+v", r)
	}
	sample := strings.TrimSpace(r.stdout)
	tok, err := apikey.ParseToken(sample)
	if err != nil || tok.Prefix != "seed_co" {
		t.Fatalf("sample %q: %+v, %v; want the prefix seed_co", sample, tok, err)
	}
	rec, err := openStore(t, e.vars["APIKEY_DB"]).Lookup(context.Background(), tok.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rec.Hash, "hmac-sha256$2$") {
		t.Errorf("seeded hash %q, want hmac-sha256$2$...: the current pepper", rec.Hash)
	}
	want(t, e.run("verify", sample), 0, "valid: "+tok.ID+" (seed-0)\n", "")
}

func TestSeedUsage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	want(t, e.run("seed"), 2, "", "apikey: seed needs exactly one argument: the number of keys\n")
	want(t, e.run("seed", "0"), 2, "", "apikey: invalid number of keys \"0\": want a whole number of at least 1\n")
	want(t, e.run("seed", "ten"), 2, "", "apikey: invalid number of keys \"ten\": want a whole number of at least 1\n")
	want(t, e.run("seed", "5", "--owner-count", "0"), 2, "", "apikey: invalid --owner-count 0: must be at least 1\n")
	want(t, e.run("seed", "5", "--batch", "0"), 2, "", "apikey: invalid --batch 0: must be from 1 to 1000000\n")
}

// TestSeedJSON checks seed --json: one JSON object with the count and the
// time taken, and the sample only with --print-sample.
func TestSeedJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, sample := range []bool{false, true} {
		args := []string{"seed", "7", "--json"}
		if sample {
			args = append(args, "--print-sample")
		}
		r := e.run(args...)
		var got map[string]any
		dec := json.NewDecoder(strings.NewReader(r.stdout))
		if err := dec.Decode(&got); err != nil || dec.More() || r.code != 0 {
			t.Fatalf("seed --json (sample %v): %v: %+v", sample, err, r)
		}
		if got["count"] != 7.0 || got["elapsed_seconds"] == nil || got["keys_per_second"] == nil {
			t.Errorf("seed --json: %v", got)
		}
		s, ok := got["sample"].(string)
		if ok != sample {
			t.Errorf("seed --json, --print-sample %v: sample %v", sample, got["sample"])
		}
		if sample {
			if v := e.run("verify", s); v.code != 0 {
				t.Errorf("verify of the sample: %+v", v)
			}
		}
	}
}
