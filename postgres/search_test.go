package postgres_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/go-apikey/apikey"
)

// TestSearchIndex checks that search answers through the trigram indexes
// of migration 0009 (pg_trgm is available on the test server) and the
// state filters through their partial indexes, with the answers of the
// exact test: literal % and _, any case.
func TestSearchIndex(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	m, err := apikey.NewManager(s, apikey.Config{UsageFlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	var ids []string
	for _, n := range []string{"Billing Prod", "billing-staging", "100% done", "a_b_c", `back\slash`, "deploy bot"} {
		k, _, err := m.Create(ctx, apikey.CreateParams{Name: n, Owner: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, k.ID)
	}
	for term, want := range map[string][]string{
		"BILLING": {ids[1], ids[0]},
		"100%":    {ids[2]},
		"%":       {ids[2]},
		"_b_":     {ids[3]},
		`k\s`:     {ids[4]},
		"acm":     {ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]},
		ids[3]:    {ids[3]},
		"zzz":     nil,
	} {
		page, err := m.List(ctx, apikey.KeyFilter{Search: term})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, k := range page.Keys {
			got = append(got, k.ID)
		}
		if !slices.Equal(got, want) {
			t.Errorf("search %q: %v, want %v", term, got, want)
		}
	}

	conn, err := s.Pool().Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SET enable_seqscan = off; SET enable_indexscan = off"); err != nil { // a few rows: make the planner show what it can use
		t.Fatal(err)
	}
	plan := func(query string, args ...any) string {
		rows, err := conn.Query(ctx, "EXPLAIN "+query, args...)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var b strings.Builder
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			b.WriteString(line + "\n")
		}
		return b.String()
	}
	p := plan(`SELECT id FROM apikey_keys WHERE (name ILIKE $1 OR id ILIKE $1 OR owner ILIKE $1) ORDER BY created_at DESC, id DESC LIMIT 51`, "%billing%")
	for _, idx := range []string{"apikey_keys_name_trgm", "apikey_keys_id_trgm", "apikey_keys_owner_trgm"} {
		if !strings.Contains(p, idx) {
			t.Errorf("the search does not use %s:\n%s", idx, p)
		}
	}
	if p := plan(`SELECT id FROM apikey_keys WHERE revoked_at IS NOT NULL ORDER BY created_at DESC, id DESC LIMIT 51`); !strings.Contains(p, "apikey_keys_revoked_created") {
		t.Errorf("the revoked filter does not use its index:\n%s", p)
	}
}
