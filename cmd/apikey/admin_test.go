package main

import (
	"context"
	"strings"
	"testing"

	"github.com/go-apikey/apikey/cmd/apikey/internal/admin"
	"github.com/go-apikey/apikey/sqlite"
)

func TestAdminCreateUser(t *testing.T) {
	e := newEnv(t)
	r := e.runStdin("correct horse battery\n", "admin", "create-user", "Alice@Example.com")
	want(t, r, 0, "created admin user alice@example.com\n", "")

	// The password was stored as an argon2id hash that checks.
	s, err := sqlite.Open(context.Background(), e.vars["APIKEY_DB"])
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hash, err := s.Admin().PasswordHash(context.Background(), "ALICE@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "$argon2id$v=19$") || !admin.CheckPassword(hash, "correct horse battery") {
		t.Errorf("stored hash %q does not check", hash)
	}

	// A duplicate, in any case, is refused with exit status 1.
	r = e.runStdin("another long password\n", "admin", "create-user", "alice@EXAMPLE.com")
	want(t, r, 1, "", "apikey: an admin user alice@example.com already exists\n")
}

func TestAdminCreateUserRefusals(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		stdin string
		args  []string
		code  int
		err   string
	}{
		{"short\n", []string{"bob@example.com"}, 1, "apikey: the password must be at least 12 characters long\n"},
		{"", []string{"bob@example.com"}, 1, "apikey: no password on standard input: pipe it in, one line, or run the command in a terminal\n"},
		{"long enough password\n", []string{"not an email"}, 1, "apikey: \"not an email\" is not an email address such as alice@example.com\n"},
		{"long enough password\n", nil, 2, "apikey: create-user needs exactly one argument: an email address\n"},
	} {
		r := e.runStdin(c.stdin, append([]string{"admin", "create-user"}, c.args...)...)
		want(t, r, c.code, "", c.err)
	}
	// A last line without a newline counts; nothing else is read.
	e2 := newEnv(t)
	r := e2.runStdin("no newline at end", "admin", "create-user", "carol@example.com")
	want(t, r, 0, "created admin user carol@example.com\n", "")
}
