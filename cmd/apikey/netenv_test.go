package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestNetEnvFlags: the flags of create, update and list, their output,
// and one precise line with exit status 2 for each bad value.
func TestNetEnvFlags(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	token, id := e.create("--name", "ci", "--environment", "test", "--allow-cidr", "10.1.2.3/8", "--allow-cidr", "2001:db8::1", "--inactivity-expiry", "90d")
	if !strings.HasPrefix(token, "ak_test_"+id+"_") {
		t.Fatalf("test key %q", token)
	}
	r := e.run("show", id, "--json")
	var k struct {
		Environment      string   `json:"environment"`
		AllowedCIDRs     []string `json:"allowed_cidrs"`
		InactivityExpiry string   `json:"inactivity_expiry"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &k); err != nil || k.Environment != "test" ||
		strings.Join(k.AllowedCIDRs, " ") != "10.0.0.0/8 2001:db8::1/128" || k.InactivityExpiry != "90d" {
		t.Errorf("show --json: %q %+v %v", r.stdout, k, err)
	}
	r = e.run("show", id)
	for _, line := range []string{"env:", "test", "networks:", "10.0.0.0/8, 2001:db8::1/128", "inactive:", "expires after 90d unused"} {
		if !strings.Contains(r.stdout, line) {
			t.Errorf("show lacks %q:\n%s", line, r.stdout)
		}
	}
	r = e.run("update", id, "--allow-cidr", "203.0.113.0/24", "--inactivity-expiry", "never")
	if r.code != 0 || !strings.Contains(r.stdout, "203.0.113.0/24") || !strings.Contains(r.stdout, "never expires for want of use") {
		t.Errorf("update: %+v", r)
	}
	r = e.run("update", id, "--clear-allow-cidrs", "--inactivity-expiry", "0")
	if r.code != 0 || strings.Contains(r.stdout, "networks:") || strings.Contains(r.stdout, "inactive:") {
		t.Errorf("update back: %+v", r)
	}
	_, liveID := e.create("--name", "live")
	r = e.run("list", "--environment", "test")
	if r.code != 0 || !strings.Contains(r.stdout, id) || strings.Contains(r.stdout, liveID) {
		t.Errorf("list --environment test: %+v", r)
	}
	r = e.run("verify", token)
	if r.code != 0 {
		t.Errorf("verify test key: %+v", r)
	}

	for _, tc := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"create", "--name", "x", "--environment", "prod"}, `invalid --environment "prod": must be live or test`},
		{[]string{"create", "--name", "x", "--allow-cidr", "10.0.0.0/33"}, `invalid --allow-cidr: entry 1 "10.0.0.0/33": bad prefix length /33`},
		{[]string{"create", "--name", "x", "--allow-cidr", "10.0.0.0/8", "--allow-cidr", "intranet"}, `invalid --allow-cidr: entry 2 "intranet": not an IP address or CIDR range`},
		{[]string{"create", "--name", "x", "--inactivity-expiry", "10m"}, `invalid --inactivity-expiry "10m": must be between 1h and 36500d, 0 for the default, or never; got 10m0s`},
		{[]string{"create", "--name", "x", "--inactivity-expiry", "soon"}, `invalid --inactivity-expiry "soon": want a duration like 90d, 2w or 36h, 0 for the default, or never; got "soon"`},
		{[]string{"update", id, "--allow-cidr", "1.2.3.4", "--clear-allow-cidrs"}, "--allow-cidr and --clear-allow-cidrs cannot be combined"},
		{[]string{"update", id, "--allow-cidr", "fe80::1%eth0"}, `invalid --allow-cidr: entry 1 "fe80::1%eth0": an address with a zone cannot be allowed`},
		{[]string{"update", id, "--inactivity-expiry", "-3d"}, `invalid --inactivity-expiry "-3d": want a duration like 90d, 2w or 36h, 0 for the default, or never; got "-3d"`},
		{[]string{"list", "--environment", "staging"}, `invalid --environment "staging": must be live or test`},
		{[]string{"serve", "--environment", "prod"}, `invalid --environment "prod": want live or test`},
		{[]string{"serve", "--inactivity-expiry", "5m"}, `invalid --inactivity-expiry "5m": must be between 1h and 36500d, 0 for the default, or never; got 5m0s`},
		{[]string{"serve", "--inactivity-expiry", "never"}, `invalid --inactivity-expiry "never": never is for a key's own policy; leave the setting out for no default`},
		{[]string{"serve", "--trusted-proxies", "10.0.0.0/8,proxy.local"}, `invalid --trusted-proxies: entry 2 "proxy.local": not an IP address or CIDR range`},
	} {
		want(t, e.run(tc.args...), 2, "", "apikey: "+tc.stderr+"\n")
	}
	// The same from the environment names the variable.
	e.vars["APIKEY_ENVIRONMENT"] = "prod"
	want(t, e.run("serve"), 2, "", "apikey: invalid APIKEY_ENVIRONMENT \"prod\": want live or test\n")
}
