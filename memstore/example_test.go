package memstore_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/memstore"
)

// Run a Manager over an in-memory store, as a test of an HTTP handler
// would: no database to open or migrate, and nothing left behind.
func Example() {
	ctx := context.Background()
	m, err := apikey.NewManager(memstore.New(), apikey.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close(ctx)

	key, token, err := m.Create(ctx, apikey.CreateParams{
		Name:   "billing backend",
		Owner:  "org_42",
		Scopes: []string{"invoices:read"},
	})
	if err != nil {
		log.Fatal(err)
	}

	k, err := m.Verify(ctx, token)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(k.ID == key.ID, k.Name, k.Owner, k.HasScope("invoices:read"), k.State)

	if _, err := m.Revoke(ctx, key.ID); err != nil {
		log.Fatal(err)
	}
	_, err = m.Verify(ctx, token)
	fmt.Println(errors.Is(err, apikey.ErrRevoked))
	// Output:
	// true billing backend org_42 true active
	// true
}
