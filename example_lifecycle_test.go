package apikey_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/memstore"
)

// Roll a key with a grace window: the old token keeps working until an
// hour after the new one is first used, and at most 7 days.
func ExampleManager_Roll() {
	ctx := context.Background()
	m, err := apikey.NewManager(memstore.New(), apikey.Config{})
	if err != nil {
		panic(err)
	}
	defer m.Close(ctx)
	key, oldToken, _ := m.Create(ctx, apikey.CreateParams{Name: "billing backend"})

	k, newToken, err := m.Roll(ctx, key.ID, apikey.RollOptions{Grace: time.Hour})
	if err != nil {
		panic(err)
	}
	fmt.Println(k.PreviousSecret.GraceStarts, k.PreviousSecret.Active, k.PreviousSecret.GraceStartedAt == nil)

	_, errOld := m.Verify(ctx, oldToken)
	_, errNew := m.Verify(ctx, newToken) // the first use: the hour starts now
	fmt.Println(errOld, errNew)

	k, _ = m.Get(ctx, key.ID)
	fmt.Println(k.PreviousSecret.GraceStartedAt != nil, k.PreviousSecret.EndsAt().Sub(*k.PreviousSecret.GraceStartedAt))
	// Output:
	// first_use true true
	// <nil> <nil>
	// true 1h0m0s
}

// Disable a key for a while: verification refuses it with ErrDisabled
// until it is enabled again.
func ExampleManager_Disable() {
	ctx := context.Background()
	m, err := apikey.NewManager(memstore.New(), apikey.Config{})
	if err != nil {
		panic(err)
	}
	defer m.Close(ctx)
	key, token, _ := m.Create(ctx, apikey.CreateParams{Name: "billing backend"})

	k, _ := m.Disable(ctx, key.ID)
	_, err = m.Verify(ctx, token)
	fmt.Println(k.State, errors.Is(err, apikey.ErrDisabled), apikey.CodeOf(err))

	k, _ = m.Enable(ctx, key.ID)
	_, err = m.Verify(ctx, token)
	fmt.Println(k.State, err)
	// Output:
	// disabled true key_disabled
	// active <nil>
}
