package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-apikey/apikey/apikeytest"
)

// TestInactivityDefaultEverywhere runs the real binary on port 0 and the
// CLI (in-process and as the binary) on one SQLite database with the
// service's default inactivity expiry in a shared config file. A key
// created 100 days ago and never used is refused by serve as expired, and
// every command reports it expired too: show, show --json, list --state,
// verify. Keys with a policy of their own ("never") or unused for less
// than the default stay active everywhere. Before the default was a
// global setting, the CLI showed the stale key active.
func TestInactivityDefaultEverywhere(t *testing.T) {
	dir := t.TempDir()
	db := databaseFor(t, "sqlite")
	config := writeConfig(t, `{"default-inactivity-expiry": "90d"}`)
	e := newEnv(t)
	e.vars["APIKEY_DB"] = db
	e.vars["APIKEY_CONFIG"] = config

	// Time travel: create keys with the clock moved back, so that they
	// were created, and never used since, that long ago.
	createAt := func(ago time.Duration, args ...string) (string, string) {
		t.Helper()
		e.clock = apikeytest.NewClock(time.Now().Add(-ago))
		defer func() { e.clock = nil }()
		return e.create(args...)
	}
	admin, _ := e.create("--name", "admin", "--scope", "apikey:admin")
	stale, staleID := createAt(100*24*time.Hour, "--name", "stale")
	exempt, exemptID := createAt(100*24*time.Hour, "--name", "exempt", "--inactivity-expiry", "never")
	recent, recentID := createAt(80*24*time.Hour, "--name", "recent")

	s := startServe(t, dir, []string{"APIKEY_DB=" + db, "APIKEY_CONFIG=" + config})
	u := s.url
	expect(t, "stale key", call(t, "GET", u+"/v1/whoami", "api-key", stale, ""), 401, "key_expired")
	expect(t, "exempt key", call(t, "GET", u+"/v1/whoami", "api-key", exempt, ""), 200, "")
	expect(t, "recent key", call(t, "GET", u+"/v1/whoami", "api-key", recent, ""), 200, "")
	serveState := map[string]string{}
	for _, id := range []string{staleID, exemptID, recentID} {
		r := call(t, "GET", u+"/v1/keys/"+id, "api-key", admin, "")
		expect(t, "get "+id, r, 200, "")
		serveState[id] = r.str("state")
	}
	s.stop(t)
	want := map[string]string{staleID: "expired", exemptID: "active", recentID: "active"}
	for id, st := range want {
		if serveState[id] != st {
			t.Errorf("serve: state of %s = %q, want %q", id, serveState[id], st)
		}
	}

	// The CLI, in-process and as the binary, agrees with serve.
	binEnv := []string{"APIKEY_DB=" + db, "APIKEY_CONFIG=" + config}
	for id, st := range want {
		var k struct{ State string }
		r := e.run("show", id, "--json")
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &k) != nil || k.State != st {
			t.Errorf("show %s --json: state %q (%+v), want %q", id, k.State, r, st)
		}
		r = execute(t, dir, "", binEnv, "show", id)
		if r.code != 0 || !hasState(r.stdout, st) {
			t.Errorf("binary show %s: want state %s:\n%s%s", id, st, r.stdout, r.stderr)
		}
	}
	r := e.run("show", staleID)
	if !strings.Contains(r.stdout, "expires after 90d unused (the default), inactive from ") {
		t.Errorf("show of the stale key does not explain its state:\n%s", r.stdout)
	}
	listIDs := func(args ...string) string {
		t.Helper()
		r := e.run(append([]string{"list", "--json"}, args...)...)
		var page struct{ Keys []struct{ ID, State string } }
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &page) != nil {
			t.Fatalf("list %q: %+v", args, r)
		}
		var ids []string
		for _, k := range page.Keys {
			ids = append(ids, k.ID+"="+k.State)
		}
		return strings.Join(ids, " ")
	}
	if got := listIDs("--state", "expired"); got != staleID+"=expired" {
		t.Errorf("list --state expired = %q, want only the stale key", got)
	}
	if got := listIDs("--state", "active"); strings.Contains(got, staleID) || !strings.Contains(got, exemptID+"=active") || !strings.Contains(got, recentID+"=active") {
		t.Errorf("list --state active = %q", got)
	}
	r = e.run("verify", stale)
	if r.code != 1 || !strings.Contains(r.stdout, "expired") {
		t.Errorf("verify of the stale key: %+v, want exit 1, expired", r)
	}
	if r := e.run("verify", recent); r.code != 0 {
		t.Errorf("verify of the recent key: %+v", r)
	}

	// Without the default the CLI sees the stale key active: the setting,
	// not the key, makes the difference.
	delete(e.vars, "APIKEY_CONFIG")
	var k struct{ State string }
	if r := e.run("show", staleID, "--json"); json.Unmarshal([]byte(r.stdout), &k) != nil || k.State != "active" {
		t.Errorf("show without a default: %+v", r)
	}

	// serve's old flag still sets the default, with a note.
	s = startServe(t, dir, []string{"APIKEY_DB=" + db}, "--inactivity-expiry", "90d")
	expect(t, "stale key, old flag", call(t, "GET", s.url+"/v1/whoami", "api-key", stale, ""), 401, "key_expired")
	expect(t, "recent key, old flag", call(t, "GET", s.url+"/v1/whoami", "api-key", recent, ""), 200, "")
	s.stop(t)
	if !strings.Contains(s.stderr.String(), "apikey: --inactivity-expiry is an old name: use --default-inactivity-expiry") {
		t.Errorf("serve --inactivity-expiry: no note on stderr:\n%s", s.stderr.String())
	}
}

// hasState reports whether show's output has the row "state: STATE",
// whatever the alignment.
func hasState(out, state string) bool {
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, "state:"); ok && strings.TrimSpace(rest) == state {
			return true
		}
	}
	return false
}

// TestDefaultInactivitySetting checks the precedence of the global
// --default-inactivity-expiry (flag > APIKEY_DEFAULT_INACTIVITY_EXPIRY >
// config file), its old name (serve's --inactivity-expiry, the variable
// APIKEY_INACTIVITY_EXPIRY and the file entry "inactivity-expiry"), read
// after the new one at each level, and the errors of invalid values.
func TestDefaultInactivitySetting(t *testing.T) {
	t.Parallel()
	newFile := writeConfig(t, `{"default-inactivity-expiry": "30d"}`)
	oldFile := writeConfig(t, `{"inactivity-expiry": "20d"}`)
	bothFile := writeConfig(t, `{"inactivity-expiry": "20d", "default-inactivity-expiry": "30d"}`)
	for _, tc := range []struct {
		name      string
		env       map[string]string
		args      []string
		value     string
		src, from string
	}{
		{"default", nil, nil, "", "default", ""},
		{"file", map[string]string{"APIKEY_CONFIG": newFile}, nil, "30d", "file", `"default-inactivity-expiry" in ` + newFile},
		{"old file entry", map[string]string{"APIKEY_CONFIG": oldFile}, nil, "20d", "file", `"inactivity-expiry" in ` + oldFile},
		{"new file entry over old", map[string]string{"APIKEY_CONFIG": bothFile}, nil, "30d", "file", `"default-inactivity-expiry" in ` + bothFile},
		{"env over file", map[string]string{"APIKEY_CONFIG": newFile, "APIKEY_DEFAULT_INACTIVITY_EXPIRY": "60d"}, nil, "60d", "env", "APIKEY_DEFAULT_INACTIVITY_EXPIRY"},
		{"old env over file", map[string]string{"APIKEY_CONFIG": newFile, "APIKEY_INACTIVITY_EXPIRY": "10d"}, nil, "10d", "env", "APIKEY_INACTIVITY_EXPIRY"},
		{"new env over old", map[string]string{"APIKEY_DEFAULT_INACTIVITY_EXPIRY": "60d", "APIKEY_INACTIVITY_EXPIRY": "10d"}, nil, "60d", "env", "APIKEY_DEFAULT_INACTIVITY_EXPIRY"},
		{"flag over env and file", map[string]string{"APIKEY_CONFIG": newFile, "APIKEY_DEFAULT_INACTIVITY_EXPIRY": "60d"}, []string{"--default-inactivity-expiry", "90d"}, "90d", "flag", "--default-inactivity-expiry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			for k, v := range tc.env {
				e.vars[k] = v
			}
			all := settingsOf(t, e, tc.args...)
			s := all["default-inactivity-expiry"]
			if s.Value != tc.value || s.Source != tc.src || s.From != tc.from || s.Env != "APIKEY_DEFAULT_INACTIVITY_EXPIRY" {
				t.Errorf("default-inactivity-expiry = %+v, want %q from %s (%s)", s, tc.value, tc.src, tc.from)
			}
			if old, ok := all["inactivity-expiry"]; ok {
				t.Errorf("the old name is listed as a setting of its own: %+v", old)
			}
		})
	}

	// The value reaches the commands: a key created 40 days ago is
	// expired under the file's 30d, active under the flag's 90d.
	e := newEnv(t)
	e.clock = apikeytest.NewClock(time.Now().Add(-40 * 24 * time.Hour))
	_, id := e.create("--name", "old")
	e.clock = nil
	e.vars["APIKEY_CONFIG"] = newFile
	for _, tc := range []struct {
		args  []string
		state string
	}{
		{nil, "expired"},
		{[]string{"--default-inactivity-expiry", "90d"}, "active"},
		{[]string{"--default-inactivity-expiry", "0"}, "active"},
	} {
		var k struct{ State string }
		r := e.run(append([]string{"show", id, "--json"}, tc.args...)...)
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &k) != nil || k.State != tc.state {
			t.Errorf("show %q: %+v, want state %s", tc.args, r, tc.state)
		}
	}

	// Invalid values: one line naming the setting as given, exit 2, on any
	// command, before the database is touched.
	bad := writeConfig(t, `{"default-inactivity-expiry": "never"}`)
	badType := writeConfig(t, `{"inactivity-expiry": 90}`)
	for _, tc := range []struct {
		env    map[string]string
		args   []string
		stderr string
	}{
		{nil, []string{"list", "--default-inactivity-expiry", "5m"}, `invalid --default-inactivity-expiry "5m": must be between 1h and 36500d, 0 for the default, or never; got 5m0s`},
		{nil, []string{"show", id, "--default-inactivity-expiry", "never"}, `invalid --default-inactivity-expiry "never": never is for a key's own policy; leave the setting out for no default`},
		{map[string]string{"APIKEY_DEFAULT_INACTIVITY_EXPIRY": "soon"}, []string{"list"}, `invalid APIKEY_DEFAULT_INACTIVITY_EXPIRY "soon": want a duration like 90d, 2w or 36h, 0 for the default, or never; got "soon"`},
		{map[string]string{"APIKEY_INACTIVITY_EXPIRY": "-1d"}, []string{"verify", "ak_x"}, `invalid APIKEY_INACTIVITY_EXPIRY "-1d": want a duration like 90d, 2w or 36h, 0 for the default, or never; got "-1d"`},
		{map[string]string{"APIKEY_CONFIG": bad}, []string{"settings"}, `invalid "default-inactivity-expiry" in ` + bad + ` "never": never is for a key's own policy; leave the setting out for no default`},
		{map[string]string{"APIKEY_CONFIG": badType}, []string{"list"}, `invalid "inactivity-expiry" in ` + badType + ` "90": want a duration like 90d, 2w or 36h, 0 for the default, or never; got "90"`},
		{nil, []string{"serve", "--inactivity-expiry", "30d", "--default-inactivity-expiry", "90d"}, `--default-inactivity-expiry and --inactivity-expiry (its old name) disagree: give --default-inactivity-expiry only`},
	} {
		e := newEnv(t)
		for k, v := range tc.env {
			e.vars[k] = v
		}
		want(t, e.run(tc.args...), 2, "", "apikey: "+tc.stderr+"\n")
	}
}
