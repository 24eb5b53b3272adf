package apikey_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/memstore"
)

// Create a key, hand the token to the client once, verify it on each
// request, and revoke it for good.
func Example() {
	ctx := context.Background()
	// In production, sqlite.Open or postgres.Open (and Migrate) give a
	// store that keeps the keys; memstore keeps them in memory.
	store := memstore.New()
	m, err := apikey.NewManager(store, apikey.Config{})
	if err != nil {
		panic(err)
	}

	key, token, err := m.Create(ctx, apikey.CreateParams{Name: "billing backend", Scopes: []string{"invoices:*"}})
	if err != nil {
		panic(err)
	}
	// token is the only copy of the plaintext: show it once.

	k, err := m.Verify(ctx, token)
	fmt.Println(k.ID == key.ID, k.Name, k.HasScope("invoices:read"), err)

	m.Revoke(ctx, key.ID)
	_, err = m.Verify(ctx, token)
	fmt.Println(errors.Is(err, apikey.ErrRevoked))

	_, err = m.Verify(ctx, "ak_not_a_real_key")
	fmt.Println(errors.Is(err, apikey.ErrInvalidKey))
	// Output:
	// true billing backend true <nil>
	// true
	// true
}

func ExampleParseToken() {
	_, err := apikey.ParseToken("ak_AbC123xyz789_0123456789abcdefghijABCDEFGHIJ01xxxxxx")
	fmt.Println(err)
	// Output: apikey: invalid key: bad checksum
}

func ExampleKey_HasScope() {
	k := &apikey.Key{Scopes: []string{"billing:*", "users:read"}}
	fmt.Println(k.HasScope("billing:invoices:write"), k.HasScope("users:read"), k.HasScope("users:write"))
	// Output: true true false
}
