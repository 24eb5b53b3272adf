package main

import (
	"strings"
	"testing"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/sqlite"
)

// A verification through the CLI is recorded: the Manager's pending usage
// is flushed when the command ends.
func TestVerifyRecordsLastUsed(t *testing.T) {
	e := newEnv(t)
	token, id := e.create("--name", "n")
	if r := e.run("show", id); !strings.Contains(r.stdout, "last used:  never") {
		t.Fatalf("show before any verify = %q, want last used never", r.stdout)
	}
	if r := e.run("verify", token); r.code != 0 {
		t.Fatalf("verify: exit %d, %q", r.code, r.stderr)
	}
	r := e.run("show", id)
	if r.code != 0 || strings.Contains(r.stdout, "last used:  never") || !strings.Contains(r.stdout, "last used:  20") {
		t.Errorf("show after verify = %q, want a last-used time", r.stdout)
	}
}

// The audit log names the CLI as the actor of its changes.
func TestCLIActor(t *testing.T) {
	e := newEnv(t)
	_, id := e.create("--name", "n")
	if r := e.run("revoke", id); r.code != 0 {
		t.Fatalf("revoke: %+v", r)
	}
	st, err := sqlite.Open(t.Context(), e.vars["APIKEY_DB"])
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	evs, err := st.ListEvents(t.Context(), apikey.EventQuery{KeyID: id, Limit: 10})
	if err != nil || len(evs) != 2 {
		t.Fatalf("events = %v, %v; want created and revoked", evs, err)
	}
	for _, ev := range evs {
		if ev.Actor != "cli" {
			t.Errorf("%s event actor = %q, want cli", ev.Type, ev.Actor)
		}
	}
}
