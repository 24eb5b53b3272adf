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
