package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/go-apikey/apikey/apikeytest"
)

// TestKeyShownOnce checks that after create, no command ever prints the key
// or any part of its secret again: not list, show, update, revoke or
// verify, and not the errors of a key typed where something else was
// expected.
func TestKeyShownOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.run("create", "--name", "leak", "--owner", "acme", "--scope", "a", "--meta", "k=v", "--json")
	var got struct {
		Token string `json:"key"`
		ID    string `json:"id"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != 0 {
		t.Fatalf("create: %+v (%v)", r, err)
	}
	token, id := got.Token, got.ID
	secret := apikeytest.SecretOf(token)
	if strings.Contains(r.stderr, token) || strings.Count(r.stdout, secret) != 1 {
		t.Errorf("create printed the key more than once: %+v", r)
	}
	plain, plainID := e.create("--name", "plain")

	typo := token[:20] + "x" + token[21:]
	short := token[:len(token)-3]
	wrong := apikeytest.WrongSecret(token)
	unreachable := "postgres://postgres@127.0.0.1:1/test?connect_timeout=2"
	steps := []struct {
		stdin string
		args  []string
	}{
		{"", []string{"list"}},
		{"", []string{"list", "--json"}},
		{"", []string{"list", "--search", token}},
		{"", []string{"list", "--state", token}},
		{"", []string{"list", "--cursor", token}},
		{"", []string{"show", id}},
		{"", []string{"show", id, "--json"}},
		{"", []string{"show", token}},
		{"", []string{"show", typo}},
		{"", []string{"show", short}},
		{"", []string{"update", id, "--name", "renamed", "--meta", "k=w"}},
		{"", []string{"update", id, "--json", "--clear-scopes"}},
		{"", []string{"update", token, "--name", "x"}},
		{"", []string{"update", id, "--expires", token}},
		{"", []string{"update", id, "--meta", token}},
		{"", []string{"create", "--name", "x", "--expires", token}},
		{"", []string{"create", "--name", "x", "--scope", token}},
		{"", []string{"verify", token}},
		{token + "\n", []string{"verify"}},
		{"", []string{"verify", typo}},
		{"", []string{"verify", short}},
		{"", []string{"verify", wrong}},
		{"", []string{"verify", token + "!"}},
		{"", []string{"verify", token, token}},
		{"", []string{"verify", "--bogus=" + token}},
		{"", []string{token}},
		{"", []string{"help", token}},
		{"", []string{"--db", unreachable, "verify", token}},
		{"", []string{"revoke", token}},
		{"", []string{"revoke", id}},
		{"", []string{"revoke", id, "--json"}},
		{"", []string{"verify", token}},
		{"", []string{"delete", token}},
		{"", []string{"verify", plain}},
		{"", []string{"delete", plainID}},
		{"", []string{"verify", plain}},
	}
	for _, s := range steps {
		r := e.runStdin(s.stdin, s.args...)
		out := r.stdout + r.stderr
		for _, k := range []string{token, secret, secret[:12], secret[20:], plain, apikeytest.SecretOf(plain)} {
			if strings.Contains(out, k) {
				t.Errorf("%.40q printed (part of) a key:\nstdout %q\nstderr %q", s.args, r.stdout, r.stderr)
				break
			}
		}
	}
}
