package sqlite

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-apikey/apikey"
)

// TestSearchIndex checks that a search answers exactly what a scan of
// every key answers, through both of its steps (the window of the newest
// keys, made small here, and the trigram index), after creates, renames
// and deletes; and that the index and the state indexes are what SQLite
// uses.
func TestSearchIndex(t *testing.T) {
	defer func(w, c int) { searchWindow, searchCandidates = w, c }(searchWindow, searchCandidates)
	searchWindow = 3
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "keys.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	m, err := apikey.NewManager(s, apikey.Config{UsageFlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	names := []string{"Billing Prod", "billing-staging", "CI runner", "100% done", "a_b_c", `say "hi"`, "Ünïcode ÉTÉ", "x", "deploy bot", "billing old"}
	var ids []string
	for i, n := range names {
		owner := []string{"acme", "Globex", "initech"}[i%3]
		k, _, err := m.Create(ctx, apikey.CreateParams{Name: n, Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, k.ID)
	}
	name := "renamed BILLING"
	if _, err := m.Update(ctx, ids[2], apikey.KeyUpdate{Name: &name}); err != nil {
		t.Fatal(err)
	}
	if err := m.Delete(ctx, ids[9]); err != nil {
		t.Fatal(err)
	}
	all, err := s.List(ctx, apikey.Query{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	terms := []string{"billing", "BILL", "ill", "acme", "gLoBeX", "100%", "%", "_b_", "a_b", `"hi"`, `y "`, "ünï", "ÉTÉ", "été", "x", "zzz", "old", "runner", ids[0], strings.ToLower(ids[1][2:9]), ids[9]}
	for _, term := range terms {
		for _, limit := range []int{1, 2, 100} {
			searchCandidates = []int{5000, 1}[limit%2] // the candidates read, or the scan after the index
			got, err := s.List(ctx, apikey.Query{Search: term, Limit: limit})
			if err != nil {
				t.Fatalf("search %q: %v", term, err)
			}
			var want []string
			for _, k := range all {
				if ascii := func(x string) string { return strings.Map(asciiLower, x) }; strings.Contains(ascii(k.Name), ascii(term)) ||
					strings.Contains(ascii(k.ID), ascii(term)) || strings.Contains(ascii(k.Owner), ascii(term)) {
					want = append(want, k.ID)
				}
			}
			want = want[:min(limit, len(want))]
			var gotIDs []string
			for _, k := range got {
				gotIDs = append(gotIDs, k.ID)
			}
			if !slices.Equal(gotIDs, want) {
				t.Errorf("search %q limit %d: %v, want %v", term, limit, gotIDs, want)
			}
		}
	}

	plan := func(query string, args ...any) string {
		rows, err := s.db.QueryContext(ctx, "EXPLAIN QUERY PLAN "+query, args...)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var b strings.Builder
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			b.WriteString(detail + "\n")
		}
		return b.String()
	}
	const search = `SELECT id FROM apikey_keys WHERE id IN (SELECT r.id FROM apikey_keys_search s JOIN apikey_keys_search_rows r ON r.n = s.rowid
		WHERE apikey_keys_search MATCH ?) ORDER BY created_at DESC, id DESC LIMIT 50`
	if p := plan(search, `"billing"`); !strings.Contains(p, "VIRTUAL TABLE INDEX") {
		t.Errorf("the search does not use the trigram index:\n%s", p)
	}
	if p := plan(`SELECT id FROM apikey_keys WHERE owner = ? AND revoked_at IS NULL ORDER BY created_at DESC, id DESC LIMIT 50`, "acme"); !strings.Contains(p, "apikey_keys_owner_created") || strings.Contains(p, "TEMP B-TREE") {
		t.Errorf("the owner filter does not use its index in list order:\n%s", p)
	}
	if p := plan(`SELECT id FROM apikey_keys WHERE revoked_at IS NOT NULL ORDER BY created_at DESC, id DESC LIMIT 50`); !strings.Contains(p, "apikey_keys_revoked_created") {
		t.Errorf("the revoked filter does not use its index:\n%s", p)
	}
	if p := plan(`SELECT id FROM apikey_keys WHERE revoked_at IS NULL AND expires_at <= ? ORDER BY created_at DESC, id DESC LIMIT 50`, "2030"); !strings.Contains(p, "apikey_keys_expiring_created") {
		t.Errorf("the expired filter does not use its index:\n%s", p)
	}
}

func asciiLower(r rune) rune {
	if 'A' <= r && r <= 'Z' {
		return r + 'a' - 'A'
	}
	return r
}
