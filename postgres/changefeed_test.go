package postgres_test

import (
	"testing"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeytest"
)

// TestStrictRevocation runs the strict revocation suite with two pools on
// one schema, as two servers would use it. The reader follows the change
// feed alone (no LISTEN), which is what strict revocation waits for.
func TestStrictRevocation(t *testing.T) {
	apikeytest.TestStrictRevocation(t, func(t *testing.T) (apikey.Store, apikey.Store) {
		dsn := testDSN(t)
		schema := newSchema(t, dsn)
		a := openStore(t, dsn, schema)
		if err := a.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		return a, openStore(t, dsn, schema)
	})
}

// TestChangeFeedTruncate: a TRUNCATE of apikey_keys, which fires no row
// trigger, is recorded as one change for every key (a Manager that reads it
// empties its cache).
func TestChangeFeedTruncate(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	w, err := apikey.NewManager(s, apikey.Config{UsageFlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.Create(ctx, apikey.CreateParams{Name: "gone"}); err != nil {
		t.Fatal(err)
	}
	last, err := s.LastChange(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, "TRUNCATE apikey_keys"); err != nil {
		t.Fatal(err)
	}
	cs, err := s.ChangesAfter(ctx, last, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].Op != apikey.ChangeTruncate || cs[0].KeyID != "" {
		t.Errorf("changes of a TRUNCATE = %+v, want one truncate without a key id", cs)
	}
}
