package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
)

// TestRoll checks roll: a new key, once; the old one stops verifying.
func TestRoll(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	old, id := e.create("--name", "svc")
	r := e.run("roll", id)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "ak_"+id+"_") || !strings.Contains(r.stderr, "Rolled key "+id) {
		t.Fatalf("roll: %+v", r)
	}
	token := strings.TrimSpace(r.stdout)
	want(t, e.run("verify", old), 1, "rejected: invalid\n", "")
	want(t, e.run("verify", token), 0, "valid: "+id+" (svc)\n", "")
	var issued struct {
		Key string `json:"key"`
		ID  string `json:"id"`
	}
	r = e.run("roll", id, "--json")
	if err := json.Unmarshal([]byte(r.stdout), &issued); err != nil || issued.ID != id || !strings.HasPrefix(issued.Key, "ak_"+id+"_") {
		t.Errorf("roll --json: %+v (%v)", r, err)
	}
	e.run("revoke", id)
	if r := e.run("roll", id); r.code != 1 || r.stdout != "" {
		t.Errorf("roll of a revoked key: %+v", r)
	}
	want(t, e.run("roll", "AAAAAAAAAAAA"), 1, "", "apikey: no key with id \"AAAAAAAAAAAA\"\n")
	want(t, e.run("roll"), 2, "", "apikey: roll needs exactly one argument: a key id\n")
}

// TestEvents checks the audit log from the command line, with filters.
func TestEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, a := e.create("--name", "a")
	_, b := e.create("--name", "b")
	e.run("revoke", a)
	r := e.run("events")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "TIME") || strings.Count(r.stdout, "\n") != 4 || !strings.Contains(r.stdout, "key.revoked  "+a+"  cli") {
		t.Errorf("events:\n%s%s", r.stdout, r.stderr)
	}
	var page apikey.EventPage
	r = e.run("events", "--key", b, "--json")
	if err := json.Unmarshal([]byte(r.stdout), &page); err != nil || len(page.Events) != 1 || page.Events[0].Type != apikey.EventCreated {
		t.Errorf("events --key --json: %+v (%v)", r, err)
	}
	r = e.run("events", "--type", "key.revoked", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &page); err != nil || len(page.Events) != 1 || page.Events[0].KeyID != a {
		t.Errorf("events --type --json: %+v (%v)", r, err)
	}
	r = e.run("events", "--limit", "1")
	if r.code != 0 || !strings.Contains(r.stderr, "More events: add --cursor ") {
		t.Errorf("events --limit 1: %+v", r)
	}
	if r := e.run("events", "--type", "nope"); r.code != 2 || !strings.HasPrefix(r.stderr, "apikey: invalid --type \"nope\": want one of key.created, key.imported, ") {
		t.Errorf("events --type nope: %+v", r)
	}
	want(t, e.run("events", "--actor", "x", "--type", "key.rolled", "--json"), 0, "{\n  \"events\": []\n}\n", "")
}

// TestUsage checks usage: counts by outcome, the chart and the JSON.
func TestUsage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	token, id := e.create("--name", "used")
	for range 3 {
		want(t, e.run("verify", token), 0, "valid: "+id+" (used)\n", "")
	}
	e.run("verify", token[:len(token)-8]+"AAAAAAAA")
	r := e.run("usage", id)
	if r.code != 0 || !strings.Contains(r.stdout, "by hour") || !strings.Contains(r.stdout, "█") ||
		!strings.Contains(r.stdout, "Total: 3 valid") || strings.Count(r.stdout, "\n") != 2+25+1 && strings.Count(r.stdout, "\n") != 2+24+1 {
		t.Errorf("usage:\n%s%s", r.stdout, r.stderr)
	}
	r = e.run("usage", id, "--since", "30d")
	if r.code != 0 || !strings.Contains(r.stdout, "by day") || !strings.Contains(r.stdout, "Total: 3 valid") {
		t.Errorf("usage --since 30d:\n%s%s", r.stdout, r.stderr)
	}
	var rep usageReport
	r = e.run("usage", id, "--since", "2h", "--granularity", "minute", "--json")
	var valid int64
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.KeyID != id || rep.Granularity != apikey.ByMinute {
		t.Fatalf("usage --json: %+v (%v)", r, err)
	}
	for _, u := range rep.Usage {
		if u.Outcome == "valid" {
			valid += u.Count
		}
	}
	if valid != 3 {
		t.Errorf("usage --json counts %d valid, want 3: %+v", valid, rep.Usage)
	}
	want(t, e.run("usage", id, "--since", "40d"), 2, "", "apikey: the period spans 960h0m0s: at most 31 days\n")
	want(t, e.run("usage", id, "--granularity", "week"), 2, "", "apikey: invalid --granularity \"week\": want minute, hour or day\n")
	want(t, e.run("usage", id, "--since", "soon"), 2, "", "apikey: invalid --since \"soon\": want a duration such as 24h, 7d or 30d\n")
	want(t, e.run("usage", "AAAAAAAAAAAA"), 1, "", "apikey: no key with id \"AAAAAAAAAAAA\"\n")
}

// TestJSONEverywhere checks --json on verify and delete.
func TestJSONEverywhere(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	token, id := e.create("--name", "j")
	var v verifyResult
	r := e.run("verify", token, "--json")
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || r.code != 0 || !v.Valid || v.Code != apikey.CodeValid || v.Key == nil || v.Key.ID != id {
		t.Errorf("verify --json: %+v (%v)", r, err)
	}
	e.run("revoke", id)
	r = e.run("verify", token, "--json")
	v = verifyResult{}
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || r.code != 1 || v.Valid || v.Code != apikey.CodeKeyRevoked || v.Reason != "revoked" || v.Key != nil {
		t.Errorf("verify --json of a revoked key: %+v (%v)", r, err)
	}
	want(t, e.run("delete", id, "--json"), 0, "{\n  \"deleted\": true,\n  \"id\": \""+id+"\"\n}\n", "")
}

// TestAdminUsers checks admin users list, disable, enable, set-role,
// reset-password, reset-two-factor and unlock, and create-user --role.
func TestAdminUsers(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.vars["APIKEY_DB"] = databaseFor(t, backend)
			testAdminUsers(t, e)
		})
	}
}

func testAdminUsers(t *testing.T, e *env) {
	want(t, e.runStdin("a long password!\n", "admin", "create-user", "ada@example.com"), 0, "created admin user ada@example.com\n", "")
	r := e.runStdin("a long password!\n", "admin", "create-user", "bob@example.com", "--role", "viewer", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"role": "viewer"`) {
		t.Errorf("create-user --role viewer --json: %+v", r)
	}
	want(t, e.runStdin("a long password!\n", "admin", "create-user", "x@example.com", "--role", "root"), 2, "", "apikey: invalid --role \"root\": want admin or viewer\n")
	r = e.run("admin", "users", "list")
	if r.code != 0 || !strings.Contains(r.stdout, "ada@example.com  admin   active") || !strings.Contains(r.stdout, "bob@example.com  viewer  active") {
		t.Errorf("users list:\n%s%s", r.stdout, r.stderr)
	}
	want(t, e.run("admin", "users", "disable", "Bob@Example.com"), 0, "disabled admin user bob@example.com\n", "")
	var out struct {
		Users []struct {
			Email      string     `json:"email"`
			Role       string     `json:"role"`
			DisabledAt *time.Time `json:"disabled_at"`
		}
	}
	r = e.run("admin", "users", "list", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Users) != 2 || out.Users[1].DisabledAt == nil || out.Users[0].DisabledAt != nil {
		t.Errorf("users list --json: %+v (%v)", r, err)
	}
	want(t, e.run("admin", "users", "enable", "bob@example.com"), 0, "enabled admin user bob@example.com\n", "")
	want(t, e.run("admin", "users", "set-role", "bob@example.com", "admin"), 0, "admin user bob@example.com is now admin\n", "")
	want(t, e.run("admin", "users", "set-role", "bob@example.com", "root"), 2, "", "apikey: invalid role \"root\": want admin or viewer\n")
	want(t, e.runStdin("another long password\n", "admin", "users", "reset-password", "bob@example.com"), 0,
		"new password set for admin user bob@example.com; their sessions have ended\n", "")
	want(t, e.runStdin("short\n", "admin", "users", "reset-password", "bob@example.com"), 1, "", "apikey: the password must be at least 12 characters long\n")
	want(t, e.run("admin", "users", "reset-two-factor", "bob@example.com"), 0, "two-factor removed for admin user bob@example.com\n", "")
	if r := e.run("admin", "users", "reset-two-factor", "bob@example.com", "--json"); r.code != 0 || !strings.Contains(r.stdout, `"two_factor": false`) {
		t.Errorf("reset-two-factor --json: %+v", r)
	}
	want(t, e.run("admin", "users", "unlock", "Bob@Example.com"), 0, "unlocked admin user bob@example.com: their failed logins so far no longer count\n", "")
	var unlocked struct {
		UnlockedAt *time.Time `json:"unlocked_at"`
	}
	r = e.run("admin", "users", "unlock", "bob@example.com", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &unlocked); err != nil || r.code != 0 || unlocked.UnlockedAt == nil {
		t.Errorf("users unlock --json: %+v (%v)", r, err)
	}
	for _, verb := range []string{"disable", "enable", "reset-two-factor", "unlock"} {
		want(t, e.run("admin", "users", verb, "nobody@example.com"), 1, "", "apikey: no admin user nobody@example.com\n")
	}
	want(t, e.runStdin("x\n", "admin", "users", "reset-password", "nobody@example.com"), 1, "", "apikey: no admin user nobody@example.com\n")
}
