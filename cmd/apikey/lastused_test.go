package main

import (
	"strings"
	"testing"
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
