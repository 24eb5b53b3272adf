package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/sqlite"
)

// Open a database file, migrate it, and issue and verify a key.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "apikey-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	store, err := sqlite.Open(ctx, filepath.Join(dir, "apikey.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}

	m, err := apikey.NewManager(store, apikey.Config{})
	if err != nil {
		log.Fatal(err)
	}
	key, token, err := m.Create(ctx, apikey.CreateParams{
		Name:   "billing backend",
		Owner:  "org_42",
		Scopes: []string{"invoices:read"},
	})
	if err != nil {
		log.Fatal(err)
	}
	// Hand token to the client once; only its digest is stored.

	k, err := m.Verify(ctx, token)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(k.ID == key.ID, k.Name, k.Owner, k.State, k.HasScope("invoices:read"))

	if _, err := m.Revoke(ctx, key.ID); err != nil {
		log.Fatal(err)
	}
	_, err = m.Verify(ctx, token)
	fmt.Println(errors.Is(err, apikey.ErrRevoked))
	// Output:
	// true billing backend org_42 active true
	// true
}
