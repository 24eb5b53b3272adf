package apikey_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

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

// A test key carries its environment in its token; a Manager that accepts
// live keys only refuses it, and a key with a network allowlist is
// accepted only from the ranges it lists.
func ExampleKey_Permits() {
	ctx := context.Background()
	store := memstore.New()
	m, _ := apikey.NewManager(store, apikey.Config{UsageFlushInterval: -1})
	cidrs, _ := apikey.ParseCIDRs([]string{"203.0.113.0/24"})
	_, token, _ := m.Create(ctx, apikey.CreateParams{Name: "ci", Environment: apikey.EnvTest, AllowedCIDRs: cidrs})
	fmt.Println(strings.HasPrefix(token, "ak_test_"))

	k, _ := m.Verify(ctx, token)
	fmt.Println(k.Permits(apikey.EnvLive, netip.MustParseAddr("203.0.113.5")))
	fmt.Println(k.Permits(apikey.EnvTest, netip.MustParseAddr("198.51.100.1")))
	fmt.Println(k.Permits(apikey.EnvTest, netip.MustParseAddr("203.0.113.5")))
	// Output:
	// true
	// apikey: key of another environment
	// apikey: client address 198.51.100.1 not allowed for this key
	// <nil>
}

// InactiveAt is the rule of inactivity expiry: the policy (the key's own,
// or the service's default) after the last use, or after the creation of
// a key never used.
func ExampleKey_InactiveAt() {
	created := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	used := created.Add(10 * 24 * time.Hour)
	k := &apikey.Key{CreatedAt: created, LastUsedAt: &used}
	at, ok := k.InactiveAt(90 * 24 * time.Hour)
	fmt.Println(at.Format(time.DateOnly), ok)
	k.InactivityExpiry = apikey.Inactivity(apikey.NoInactivityExpiry)
	_, ok = k.InactiveAt(90 * 24 * time.Hour)
	fmt.Println(ok)
	// Output:
	// 2030-04-11 true
	// false
}
