package sqlite_test

import (
	"testing"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeytest"
	"github.com/go-apikey/apikey/sqlite"
)

// TestStrictRevocation runs the strict revocation suite with two Stores on
// one SQLite file, as two processes (a server and the command line, or two
// servers) would open it: the change feed is the only channel between
// them.
func TestStrictRevocation(t *testing.T) {
	apikeytest.TestStrictRevocation(t, func(t *testing.T) (apikey.Store, apikey.Store) {
		a, path := openTemp(t)
		b, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return a, b
	})
}
