package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestRollGrace checks roll --grace: both keys verify during the window,
// show tells the old key's state, and every bad flag is one precise line
// with exit status 2 that changes nothing.
func TestRollGrace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	old, id := e.create("--name", "svc")
	for _, c := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"--grace", "soon"}, `apikey: invalid --grace: want a duration like 1h, 30m or 7d, not "soon"`},
		{[]string{"--grace", "0s"}, `apikey: invalid --grace: must be positive, not "0s"`},
		{[]string{"--grace", "1h", "--grace-starts", "later"}, `apikey: invalid --grace-starts "later": want first_use or now`},
		{[]string{"--grace-starts", "now"}, "apikey: invalid --grace-starts: needs a grace"},
		{[]string{"--grace-max", "2d"}, "apikey: invalid --grace-max: needs a grace"},
		{[]string{"--grace", "2h", "--grace-max", "1h"}, "apikey: invalid --grace-max: must be at least the grace (2h0m0s)"},
		{[]string{"--grace", "1h", "--grace-max", "100d"}, "apikey: invalid --grace-max: must be at most 90d"},
		{[]string{"--grace", "100d"}, "apikey: invalid --grace: must be at most 90d"},
	} {
		want(t, e.run(append([]string{"roll", id}, c.args...)...), 2, "", c.stderr+"\n")
	}
	want(t, e.run("verify", old), 0, "valid: "+id+" (svc)\n", "")

	r := e.run("roll", id, "--grace", "1h", "--grace-max", "2d")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "ak_"+id+"_") ||
		!strings.Contains(r.stderr, "the old key keeps verifying for 1h0m0s from the first use of the new key") {
		t.Fatalf("roll --grace: %+v", r)
	}
	token := strings.TrimSpace(r.stdout)
	want(t, e.run("verify", old), 0, "valid: "+id+" (svc)\n", "")
	want(t, e.run("verify", token), 0, "valid: "+id+" (svc)\n", "")
	want(t, e.run("verify", old), 0, "valid: "+id+" (svc)\n", "")
	r = e.run("show", id)
	if r.code != 0 || !strings.Contains(r.stdout, "old secret:         still verifies") ||
		!strings.Contains(r.stdout, "grace 1h0m0s from ") {
		t.Errorf("show during the grace: %+v", r)
	}
	r = e.run("roll", id, "--grace", "30m", "--grace-starts", "now", "--json")
	var issued struct {
		Key      string `json:"key"`
		Previous struct {
			Grace       string `json:"grace"`
			GraceStarts string `json:"grace_starts"`
			Active      bool   `json:"active"`
		} `json:"previous_secret"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &issued); err != nil || issued.Previous.Grace != "30m0s" ||
		issued.Previous.GraceStarts != "now" || !issued.Previous.Active {
		t.Errorf("roll --grace --json: %+v (%v)", r, err)
	}
	want(t, e.run("verify", old), 1, "rejected: invalid\n", "") // two rolls back
	want(t, e.run("verify", token), 0, "valid: "+id+" (svc)\n", "")
}

// TestDisableEnable checks disable and enable.
func TestDisableEnable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	token, id := e.create("--name", "svc")
	want(t, e.run("disable", id), 0, "disabled: "+id+" (svc), state disabled\n", "")
	want(t, e.run("verify", token), 1, "rejected: disabled\n", "")
	r := e.run("verify", token, "--json")
	if r.code != 1 || !strings.Contains(r.stdout, `"code": "key_disabled"`) {
		t.Errorf("verify --json of a disabled key: %+v", r)
	}
	r = e.run("show", id)
	if !strings.Contains(r.stdout, "state:      disabled") || !strings.Contains(r.stdout, "disabled:   ") {
		t.Errorf("show of a disabled key: %+v", r)
	}
	r = e.run("list", "--state", "disabled")
	if r.code != 0 || !strings.Contains(r.stdout, id) {
		t.Errorf("list --state disabled: %+v", r)
	}
	want(t, e.run("disable", id), 0, "disabled: "+id+" (svc), state disabled\n", "")
	r = e.run("enable", id, "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"state": "active"`) || strings.Contains(r.stdout, "disabled_at") {
		t.Errorf("enable --json: %+v", r)
	}
	want(t, e.run("verify", token), 0, "valid: "+id+" (svc)\n", "")
	e.run("revoke", id)
	if r := e.run("disable", id); r.code != 1 || r.stdout != "" {
		t.Errorf("disable of a revoked key: %+v", r)
	}
	if r := e.run("enable", id); r.code != 1 || r.stdout != "" {
		t.Errorf("enable of a revoked key: %+v", r)
	}
	want(t, e.run("disable", "AAAAAAAAAAAA"), 1, "", "apikey: no key with id \"AAAAAAAAAAAA\"\n")
	want(t, e.run("enable"), 2, "", "apikey: enable needs exactly one argument: a key id\n")
	r = e.run("events", "--key", id, "--json")
	if !strings.Contains(r.stdout, `"key.disabled"`) || !strings.Contains(r.stdout, `"key.enabled"`) {
		t.Errorf("events of the key: %+v", r)
	}
}
