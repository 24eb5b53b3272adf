package main

import (
	"context"

	"github.com/go-apikey/apikey/cmd/apikey/internal/admin"
	"github.com/go-apikey/apikey/postgres"
	"github.com/go-apikey/apikey/sqlite"
)

// sqliteAccounts adapts the SQLite admin store to admin.AccountStore.
type sqliteAccounts struct{ *sqlite.AdminStore }

func (s sqliteAccounts) Users(ctx context.Context) ([]admin.User, error) {
	us, err := s.AdminStore.Users(ctx)
	out := make([]admin.User, len(us))
	for i, u := range us {
		out[i] = admin.User{Email: u.Email, Role: u.Role, CreatedAt: u.CreatedAt, DisabledAt: u.DisabledAt, TOTPSecret: u.TOTPSecret, TwoFactor: u.TOTPSecret != "", UnlockedAt: u.UnlockedAt}
	}
	return out, err
}

func (s sqliteAccounts) User(ctx context.Context, email string) (admin.User, error) {
	u, err := s.AdminStore.User(ctx, email)
	return admin.User{Email: u.Email, Role: u.Role, CreatedAt: u.CreatedAt, DisabledAt: u.DisabledAt, TOTPSecret: u.TOTPSecret, TwoFactor: u.TOTPSecret != "", UnlockedAt: u.UnlockedAt}, err
}

// postgresAccounts adapts the PostgreSQL admin store to admin.AccountStore.
type postgresAccounts struct{ *postgres.AdminStore }

func (s postgresAccounts) Users(ctx context.Context) ([]admin.User, error) {
	us, err := s.AdminStore.Users(ctx)
	out := make([]admin.User, len(us))
	for i, u := range us {
		out[i] = admin.User{Email: u.Email, Role: u.Role, CreatedAt: u.CreatedAt, DisabledAt: u.DisabledAt, TOTPSecret: u.TOTPSecret, TwoFactor: u.TOTPSecret != "", UnlockedAt: u.UnlockedAt}
	}
	return out, err
}

func (s postgresAccounts) User(ctx context.Context, email string) (admin.User, error) {
	u, err := s.AdminStore.User(ctx, email)
	return admin.User{Email: u.Email, Role: u.Role, CreatedAt: u.CreatedAt, DisabledAt: u.DisabledAt, TOTPSecret: u.TOTPSecret, TwoFactor: u.TOTPSecret != "", UnlockedAt: u.UnlockedAt}, err
}

var (
	_ admin.AccountStore = sqliteAccounts{}
	_ admin.AccountStore = postgresAccounts{}
)
