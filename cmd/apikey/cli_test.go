package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-apikey/apikey/apikeytest"

	"github.com/go-apikey/apikey"
)

func TestLifecycle(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.vars["APIKEY_DB"] = databaseFor(t, backend)

			r := e.run("create", "--name", "demo")
			if r.code != 0 {
				t.Fatalf("create: exit %d, stderr %q", r.code, r.stderr)
			}
			token := strings.TrimSuffix(r.stdout, "\n")
			tok, err := apikey.ParseToken(token)
			if err != nil || !strings.HasPrefix(token, "ak_") || strings.Count(r.stdout, "\n") != 1 {
				t.Fatalf("create stdout %q: want one key line (%v)", r.stdout, err)
			}
			id := tok.ID
			wantNote := fmt.Sprintf("Created key %s (demo). Store the key now: it will not be shown again.\n", id)
			if r.stderr != wantNote {
				t.Errorf("create stderr %q, want %q", r.stderr, wantNote)
			}

			want(t, e.run("verify", token), 0, "valid: "+id+" (demo)\n", "")
			want(t, e.runStdin(token+"\n", "verify"), 0, "valid: "+id+" (demo)\n", "")
			want(t, e.runStdin(token+"\r\nsecond line\n", "verify"), 0, "valid: "+id+" (demo)\n", "")

			r = e.run("revoke", id)
			if r.code != 0 || !strings.HasPrefix(r.stdout, "revoked: "+id+" (demo) at ") || r.stderr != "" {
				t.Errorf("revoke: %+v", r)
			}
			// Revoking again succeeds and keeps the first instant.
			if again := e.run("revoke", id); again.code != 0 || again.stdout != r.stdout {
				t.Errorf("revoke again: %+v, want stdout %q", again, r.stdout)
			}
			want(t, e.run("verify", token), 1, "rejected: revoked\n", "")
			want(t, e.run("update", id, "--name", "x"), 1, "", "apikey: key revoked: a revoked key cannot be changed\n")

			r = e.run("show", id, "--json")
			var k apikey.Key
			if err := json.Unmarshal([]byte(r.stdout), &k); err != nil || r.code != 0 {
				t.Fatalf("show --json: %+v (%v)", r, err)
			}
			if k.State != apikey.StateRevoked || k.RevokedAt == nil {
				t.Errorf("show after revoke: state %q revoked_at %v", k.State, k.RevokedAt)
			}

			want(t, e.run("delete", id), 0, "deleted: "+id+"\n", "")
			want(t, e.run("show", id), 1, "", fmt.Sprintf("apikey: no key with id %q\n", id))
			want(t, e.run("verify", token), 1, "rejected: invalid\n", "")
			want(t, e.run("delete", id), 1, "", fmt.Sprintf("apikey: no key with id %q\n", id))
		})
	}
}

func TestCreateJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.clock = apikeytest.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	r := e.run("create", "--name", "billing", "--owner", "acme", "--scope", "b:write", "--scope", "a:read,b:write",
		"--meta", "team=platform", "--meta", "url=https://x/?a=b", "--expires", "30d", "--json")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("create --json: %+v", r)
	}
	var got struct {
		Token string `json:"key"`
		apikey.Key
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("create --json printed %q: %v", r.stdout, err)
	}
	if _, err := apikey.ParseToken(got.Token); err != nil {
		t.Errorf("key %q: %v", got.Token, err)
	}
	if !strings.HasPrefix(r.stdout, "{\n  \"key\": ") {
		t.Errorf("the key is not the first field: %s", r.stdout)
	}
	wantExp := time.Date(2030, 2, 1, 3, 4, 5, 0, time.UTC)
	if got.Name != "billing" || got.Owner != "acme" || strings.Join(got.Scopes, " ") != "a:read b:write" ||
		got.Metadata["team"] != "platform" || got.Metadata["url"] != "https://x/?a=b" || len(got.Metadata) != 2 ||
		got.ExpiresAt == nil || !got.ExpiresAt.Equal(wantExp) || got.State != apikey.StateActive || got.Prefix != "ak" {
		t.Errorf("create --json record: %+v", got.Key)
	}
	for _, field := range []string{`"id"`, `"created_at"`, `"expires_at"`, `"state": "active"`} {
		if !strings.Contains(r.stdout, field) {
			t.Errorf("create --json lacks %s: %s", field, r.stdout)
		}
	}
}

func TestExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	t0 := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	e.clock = apikeytest.NewClock(t0)
	rel, _ := e.create("--name", "rel", "--expires", "1d12h")
	e.create("--name", "other", "--expires", "90m")
	e.clock.Set(t0.Add(36*time.Hour - time.Microsecond))
	if r := e.run("verify", rel); r.code != 0 {
		t.Errorf("just before expiry: %+v", r)
	}
	e.clock.Set(t0.Add(36 * time.Hour))
	want(t, e.run("verify", rel), 1, "rejected: expired\n", "")
	r := e.run("list", "--state", "expired", "--json")
	var page apikey.Page
	if err := json.Unmarshal([]byte(r.stdout), &page); err != nil || len(page.Keys) != 2 {
		t.Errorf("list --state expired: %+v (%v)", r, err)
	}
}

func TestExpiryRFC3339(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	t0 := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	e.clock = apikeytest.NewClock(t0)
	token, id := e.create("--name", "abs", "--expires", "2030-01-01T14:00:00+01:00")
	r := e.run("show", id, "--json")
	var k apikey.Key
	if err := json.Unmarshal([]byte(r.stdout), &k); err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(time.Hour); k.ExpiresAt == nil || !k.ExpiresAt.Equal(want) {
		t.Errorf("expires_at %v, want %v", k.ExpiresAt, want)
	}
	e.clock.Set(t0.Add(time.Hour))
	want(t, e.run("verify", token), 1, "rejected: expired\n", "")
	want(t, e.run("create", "--name", "past", "--expires", "2030-01-01T12:00:00Z"), 1, "", "apikey: invalid expires_at: must be in the future\n")
}

func TestShow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.clock = apikeytest.NewClock(time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC))
	_, id := e.create("--name", "billing backend", "--owner", "acme", "--scope", "invoices:*", "--meta", "b=2", "--meta", "a=1", "--expires", "2h")
	want(t, e.run("show", id), 0, ""+
		"id:         "+id+"\n"+
		"name:       billing backend\n"+
		"owner:      acme\n"+
		"prefix:     ak\n"+
		"scopes:     invoices:*\n"+
		"state:      active\n"+
		"created:    2030-01-01T12:00:00Z\n"+
		"expires:    2030-01-01T14:00:00Z\n"+
		"revoked:    -\n"+
		"last used:  never\n"+
		"metadata:   a=1\n"+
		"            b=2\n", "")
	_, bare := e.create("--name", "bare")
	r := e.run("show", bare)
	for _, line := range []string{"owner:      -\n", "scopes:     -\n", "expires:    never\n", "metadata:   -\n"} {
		if !strings.Contains(r.stdout, line) {
			t.Errorf("show of a bare key lacks %q:\n%s", line, r.stdout)
		}
	}
	r = e.run("show", bare, "--json")
	if !strings.Contains(r.stdout, `"scopes": []`) || !strings.Contains(r.stdout, `"metadata": {}`) || strings.Contains(r.stdout, "expires_at") {
		t.Errorf("show --json of a bare key:\n%s", r.stdout)
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := apikeytest.NewClock(time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC))
	e.clock = c
	want(t, e.run("list"), 0, "", "No keys.\n")
	want(t, e.run("list", "--json"), 0, "{\n  \"keys\": []\n}\n", "")

	var ids []string
	for i, owner := range []string{"acme", "acme", "globex"} {
		c.Set(c.Now().Add(time.Minute))
		_, id := e.create("--name", fmt.Sprintf("key %d", i), "--owner", owner, "--scope", "a", "--scope", "b", "--expires", "1h")
		ids = append(ids, id)
	}
	if r := e.run("revoke", ids[1]); r.code != 0 {
		t.Fatal(r)
	}
	want(t, e.run("list"), 0, ""+
		"ID            NAME   OWNER   SCOPES  STATE    CREATED               EXPIRES\n"+
		ids[2]+"  key 2  globex  a,b     active   2030-01-01T12:03:00Z  2030-01-01T13:03:00Z\n"+
		ids[1]+"  key 1  acme    a,b     revoked  2030-01-01T12:02:00Z  2030-01-01T13:02:00Z\n"+
		ids[0]+"  key 0  acme    a,b     active   2030-01-01T12:01:00Z  2030-01-01T13:01:00Z\n", "")

	listIDs := func(args ...string) []string {
		t.Helper()
		r := e.run(append([]string{"list", "--json"}, args...)...)
		var page apikey.Page
		if err := json.Unmarshal([]byte(r.stdout), &page); err != nil || r.code != 0 {
			t.Fatalf("list %q: %+v (%v)", args, r, err)
		}
		var got []string
		for _, k := range page.Keys {
			got = append(got, k.ID)
		}
		return got
	}
	check := func(got []string, want ...string) {
		t.Helper()
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	check(listIDs("--owner", "acme"), ids[1], ids[0])
	check(listIDs("--state", "active"), ids[2], ids[0])
	check(listIDs("--state", "revoked"), ids[1])
	check(listIDs("--search", "KEY 2"), ids[2])
	check(listIDs("--search", ids[0]), ids[0])
	check(listIDs("--owner", "nobody"))

	// Paging: the hint on stderr, and the cursor that continues.
	r := e.run("list", "--limit", "2")
	hint := regexp.MustCompile(`^More keys: add --cursor (\S+)\n$`).FindStringSubmatch(r.stderr)
	if r.code != 0 || hint == nil || strings.Count(r.stdout, "\n") != 3 {
		t.Fatalf("list --limit 2: %+v", r)
	}
	r = e.run("list", "--limit", "2", "--cursor", hint[1])
	if r.code != 0 || r.stderr != "" || !strings.Contains(r.stdout, ids[0]) || strings.Count(r.stdout, "\n") != 2 {
		t.Errorf("second page: %+v", r)
	}
	r = e.run("list", "--limit", "2", "--json")
	var page apikey.Page
	if err := json.Unmarshal([]byte(r.stdout), &page); err != nil || page.NextCursor != hint[1] || r.stderr != "" {
		t.Errorf("list --json: next_cursor %q, want %q (%v, stderr %q)", page.NextCursor, hint[1], err, r.stderr)
	}
	check(listIDs("--limit", "2", "--cursor", page.NextCursor), ids[0])
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	t0 := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	e.clock = apikeytest.NewClock(t0)
	_, id := e.create("--name", "old", "--owner", "acme", "--scope", "a", "--meta", "k=v", "--expires", "1h")
	get := func(args ...string) apikey.Key {
		t.Helper()
		r := e.run(append([]string{"update", id, "--json"}, args...)...)
		var k apikey.Key
		if err := json.Unmarshal([]byte(r.stdout), &k); err != nil || r.code != 0 {
			t.Fatalf("update %q: %+v (%v)", args, r, err)
		}
		return k
	}
	k := get("--name", "new")
	if k.Name != "new" || k.Owner != "acme" || strings.Join(k.Scopes, ",") != "a" || k.Metadata["k"] != "v" || k.ExpiresAt == nil {
		t.Errorf("--name changed more than the name: %+v", k)
	}
	k = get("--scope", "c", "--scope", "b")
	if strings.Join(k.Scopes, ",") != "b,c" || k.Name != "new" || k.Metadata["k"] != "v" {
		t.Errorf("--scope: %+v", k)
	}
	k = get("--clear-scopes")
	if len(k.Scopes) != 0 {
		t.Errorf("--clear-scopes: %+v", k.Scopes)
	}
	k = get("--meta", "x=1", "--meta", "y=")
	if len(k.Metadata) != 2 || k.Metadata["x"] != "1" || k.Metadata["y"] != "" {
		t.Errorf("--meta: %v", k.Metadata)
	}
	k = get("--clear-meta")
	if len(k.Metadata) != 0 {
		t.Errorf("--clear-meta: %v", k.Metadata)
	}
	k = get("--expires", "2w")
	if want := t0.Add(14 * 24 * time.Hour); k.ExpiresAt == nil || !k.ExpiresAt.Equal(want) {
		t.Errorf("--expires 2w: %v, want %v", k.ExpiresAt, want)
	}
	k = get("--no-expiry")
	if k.ExpiresAt != nil || k.Name != "new" {
		t.Errorf("--no-expiry: %+v", k)
	}
	// Without --json, update prints the key like show.
	r := e.run("update", id, "--name", "plain")
	if r.code != 0 || !strings.Contains(r.stdout, "name:       plain\n") {
		t.Errorf("update: %+v", r)
	}
}

func TestPepperAndPrefix(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.vars["APIKEY_PEPPER"] = "old-pepper-0123456789"
	e.vars["APIKEY_PREFIX"] = "acme_live"
	token, id := e.create("--name", "peppered")
	if !strings.HasPrefix(token, "acme_live_"+id+"_") {
		t.Errorf("key %q lacks the prefix acme_live", token)
	}
	want(t, e.run("verify", token), 0, "valid: "+id+" (peppered)\n", "")

	// A new current pepper keeps the old one for verification.
	e.vars["APIKEY_PEPPER"] = "2:new-pepper-0123456789, 1:old-pepper-0123456789"
	want(t, e.run("verify", token), 0, "valid: "+id+" (peppered)\n", "")
	// Verification rehashed the key with pepper 2: the old one alone no
	// longer matches.
	e.vars["APIKEY_PEPPER"] = "2:new-pepper-0123456789"
	want(t, e.run("verify", token), 0, "valid: "+id+" (peppered)\n", "")
	e.vars["APIKEY_PEPPER"] = "old-pepper-0123456789"
	want(t, e.run("verify", token), 1, "rejected: invalid\n", "")
	delete(e.vars, "APIKEY_PEPPER")
	want(t, e.run("verify", token), 1, "rejected: invalid\n", "")
}

func TestVerifyRejects(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	token, _ := e.create("--name", "demo")
	wrongSecret := apikeytest.WrongSecret(token)
	unknownID := apikeytest.ForgeToken("ak", "AAAAAAAAAAAA", apikeytest.SecretOf(token))
	badChecksum := apikeytest.BadChecksum(token)
	for _, tc := range []struct{ token, stdout string }{
		{wrongSecret, "rejected: invalid\n"},
		{unknownID, "rejected: invalid\n"},
		{badChecksum, "rejected: invalid (bad checksum)\n"},
		{"hello", "rejected: invalid (too short)\n"},
		{token + "!", fmt.Sprintf("rejected: invalid (character outside the key alphabet at byte %d)\n", len(token))},
		{strings.Repeat("a", 300), "rejected: invalid (longer than 256 bytes)\n"},
	} {
		want(t, e.run("verify", tc.token), 1, tc.stdout, "")
	}
	want(t, e.runStdin("", "verify"), 2, "", "apikey: verify needs a key: give it as the argument or on standard input\n")
	want(t, e.runStdin("\n"+token+"\n", "verify"), 2, "", "apikey: verify needs a key: give it as the argument or on standard input\n")
	want(t, e.run("verify", token, token), 2, "", "apikey: verify takes at most one key (got 2 arguments)\n")
}

func TestMigrate(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			db := databaseFor(t, backend)
			r := e.run("--db", db, "migrate")
			if r.code != 0 || !strings.HasPrefix(r.stdout, "applied 0001_create_keys.sql\n") || !strings.HasSuffix(r.stdout, "\n"+backend+" database is up to date\n") {
				t.Errorf("first migrate does not say what it applied: %+v", r)
			}
			want(t, e.run("migrate", "--db", db), 0, backend+" database is up to date\n", "")
			r = e.run("migrate", "--db", db, "--status")
			if r.code != 0 || !strings.Contains(r.stdout, "0001_create_keys.sql") || !strings.HasSuffix(r.stdout, " migrations, 0 pending\n") {
				t.Errorf("migrate --status: %+v", r)
			}
			var rep migrateReport
			r = e.run("migrate", "--db", db, "--json")
			if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 0 || rep.Driver != backend || len(rep.Applied) != 0 ||
				len(rep.Migrations) == 0 || rep.Migrations[0].AppliedAt.IsZero() || rep.Integrity != "intact" {
				t.Errorf("migrate --json: %+v (%v)", r, err)
			}
			want(t, e.run("migrate", "--db", db, "--status", "--check"), 2, "", "apikey: --status cannot be combined with --check or --grant: it only lists the migrations\n")
		})
	}
}

func TestDatabaseLocation(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir) // the default ./apikey.db
	e := &env{t: t, vars: map[string]string{}}
	token, _ := e.create("--name", "default")
	if _, err := os.Stat(filepath.Join(dir, "apikey.db")); err != nil {
		t.Errorf("the default database: %v", err)
	}
	// The same file under the other spellings.
	for _, db := range []string{"apikey.db", "./apikey.db", "sqlite:apikey.db", "sqlite:" + filepath.Join(dir, "apikey.db"), "sqlite://" + filepath.Join(dir, "apikey.db")} {
		e.vars["APIKEY_DB"] = db
		if r := e.run("verify", token); r.code != 0 {
			t.Errorf("APIKEY_DB=%s: %+v", db, r)
		}
	}
	// --db wins over APIKEY_DB.
	e.vars["APIKEY_DB"] = "other.db"
	if r := e.run("--db", "apikey.db", "verify", token); r.code != 0 {
		t.Errorf("--db over APIKEY_DB: %+v", r)
	}
	want(t, e.run("verify", token), 1, "rejected: invalid\n", "")
}

func TestVersion(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	line := regexp.MustCompile(`^apikey \S+ \(go[^)]+\)\n$`)
	for _, args := range [][]string{{"version"}, {"--version"}} {
		r := e.run(args...)
		if r.code != 0 || !line.MatchString(r.stdout) || r.stderr != "" {
			t.Errorf("%q: %+v", args, r)
		}
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.run("--help")
	for _, s := range []string{"APIKEY_DB", "APIKEY_PEPPER", "APIKEY_PREFIX", "Exit status:", "create", "verify", "revoke", "migrate"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("--help lacks %q", s)
		}
	}
	r = e.run("verify", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "0  the key is valid") || !strings.Contains(r.stdout, "2  the check could not be made") {
		t.Errorf("verify --help: %+v", r)
	}
}

// TestBadInput checks every kind of bad input: its exit status and its
// exact one-line message, and that none of them creates the database.
func TestBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, id := e.create("--name", "existing")
	const dur = `want a duration like 30d, 12h or an RFC 3339 time`
	for _, tc := range []struct {
		args   []string
		env    map[string]string
		code   int
		stderr string
	}{
		{args: []string{"create", "--name", "x", "--bogus"}, code: 2, stderr: "unknown flag: --bogus"},
		{args: []string{"create", "--name", "x", "-z"}, code: 2, stderr: "unknown shorthand flag: 'z' in -z"},
		{args: []string{"list", "--limit", "many"}, code: 2, stderr: `invalid argument "many" for "--limit" flag: strconv.ParseInt: parsing "many": invalid syntax`},
		{args: []string{"create"}, code: 2, stderr: "create needs --name"},
		{args: []string{"create", "--owner", "acme"}, code: 2, stderr: "create needs --name"},
		{args: []string{"create", "--name", ""}, code: 1, stderr: "invalid name: is required"},
		{args: []string{"create", "--name", "x", "extra"}, code: 2, stderr: "create takes no arguments (got 1)"},
		{args: []string{"create", "--name", "x", "--expires", "30x"}, code: 2, stderr: `invalid --expires "30x": ` + dur},
		{args: []string{"create", "--name", "x", "--expires", ""}, code: 2, stderr: `invalid --expires "": ` + dur},
		{args: []string{"create", "--name", "x", "--expires", "1d-1h"}, code: 2, stderr: `invalid --expires "1d-1h": ` + dur},
		{args: []string{"create", "--name", "x", "--expires", "99999999999999d"}, code: 2, stderr: `invalid --expires "99999999999999d": ` + dur},
		{args: []string{"create", "--name", "x", "--expires", "-1h"}, code: 2, stderr: `invalid --expires "-1h": the duration must be positive`},
		{args: []string{"create", "--name", "x", "--expires", "0d"}, code: 2, stderr: `invalid --expires "0d": the duration must be positive`},
		{args: []string{"create", "--name", "x", "--meta", "novalue"}, code: 2, stderr: `invalid --meta "novalue": want name=value`},
		{args: []string{"create", "--name", "x", "--meta", "=v"}, code: 2, stderr: `invalid --meta "=v": the name is empty`},
		{args: []string{"create", "--name", "x", "--meta", "a=1", "--meta", "a=2"}, code: 2, stderr: `invalid --meta "a=2": "a" is given twice`},
		{args: []string{"create", "--name", "x", "--meta", "bad name=1"}, code: 1, stderr: `invalid metadata: name "bad name" must be 1 to 64 characters of A-Z a-z 0-9 _ . -`},
		{args: []string{"create", "--name", "x", "--scope", "bad scope"}, code: 1, stderr: `invalid scopes: "bad scope" is not a valid scope (1 to 100 characters of A-Z a-z 0-9 : . _ - /, optionally ending in ":*", or "*")`},
		{args: []string{"show", "AAAAAAAAAAAA"}, code: 1, stderr: `no key with id "AAAAAAAAAAAA"`},
		{args: []string{"show", "nope"}, code: 1, stderr: `no key with id "nope"`},
		{args: []string{"revoke", "AAAAAAAAAAAA"}, code: 1, stderr: `no key with id "AAAAAAAAAAAA"`},
		{args: []string{"delete", "AAAAAAAAAAAA"}, code: 1, stderr: `no key with id "AAAAAAAAAAAA"`},
		{args: []string{"update", "AAAAAAAAAAAA", "--name", "x"}, code: 1, stderr: `no key with id "AAAAAAAAAAAA"`},
		{args: []string{"show"}, code: 2, stderr: "show needs exactly one argument: a key id"},
		{args: []string{"revoke", "a", "b"}, code: 2, stderr: "revoke needs exactly one argument: a key id"},
		{args: []string{"update", id}, code: 2, stderr: "update changes nothing: give --name, --scope, --clear-scopes, --meta, --clear-meta, --expires, --no-expiry, --ratelimit, --clear-ratelimits, --credits, --refill, --clear-credits, --allow-cidr, --clear-allow-cidrs or --inactivity-expiry"},
		{args: []string{"update", id, "--scope", "a", "--clear-scopes"}, code: 2, stderr: "--scope and --clear-scopes cannot be combined"},
		{args: []string{"update", id, "--meta", "a=b", "--clear-meta"}, code: 2, stderr: "--meta and --clear-meta cannot be combined"},
		{args: []string{"update", id, "--expires", "1h", "--no-expiry"}, code: 2, stderr: "--expires and --no-expiry cannot be combined"},
		{args: []string{"update", id, "--expires", "soon"}, code: 2, stderr: `invalid --expires "soon": ` + dur},
		{args: []string{"update", id, "--meta", "x"}, code: 2, stderr: `invalid --meta "x": want name=value`},
		{args: []string{"update", id, "--name", " "}, code: 1, stderr: "invalid name: is required"},
		{args: []string{"list", "--state", "bogus"}, code: 2, stderr: `invalid --state "bogus": want active, disabled, expired or revoked`},
		{args: []string{"list", "--limit", "5000"}, code: 1, stderr: "invalid limit: must be between 1 and 1000"},
		{args: []string{"list", "--cursor", "zzz"}, code: 1, stderr: "invalid cursor: not a cursor returned by a previous list call"},
		{args: []string{"list", "x"}, code: 2, stderr: "list takes no arguments (got 1)"},
		{args: []string{"bogus"}, code: 2, stderr: `unknown command "bogus" for "apikey"`},
		{args: []string{"--db", "mysql://root:hunter2@db/keys", "list"}, code: 2, stderr: `unsupported database "mysql://…": want a file path, sqlite:PATH or a postgres:// URL`},
		{args: []string{"--db", "postgres://u:hunter2@h:notaport/db", "list"}, code: 2, stderr: "invalid database URL: cannot parse `postgres://u:xxxxx@h:notaport/db`: invalid port"},
		{args: []string{"--db", "sqlite:", "list"}, code: 2, stderr: `the database location "sqlite:" names no file`},
		{args: []string{"list"}, env: map[string]string{"APIKEY_PEPPER": "short"}, code: 2, stderr: "APIKEY_PEPPER: the secret of version 1 is 5 bytes; at least 16 are required"},
		{args: []string{"list"}, env: map[string]string{"APIKEY_PEPPER": "2:0123456789abcdef,1:short"}, code: 2, stderr: "APIKEY_PEPPER: the secret of version 1 is 5 bytes; at least 16 are required"},
		{args: []string{"list"}, env: map[string]string{"APIKEY_PEPPER": "2:0123456789abcdef,0123456789abcdef"}, code: 2, stderr: "APIKEY_PEPPER: entry 2 is not VERSION:SECRET with a version of at least 1"},
		{args: []string{"list"}, env: map[string]string{"APIKEY_PEPPER": "0:0123456789abcdef"}, code: 2, stderr: "APIKEY_PEPPER: entry 1 is not VERSION:SECRET with a version of at least 1"},
		{args: []string{"list"}, env: map[string]string{"APIKEY_PEPPER": "1:0123456789abcdef,1:0123456789abcdef"}, code: 2, stderr: "APIKEY_PEPPER: version 1 is given twice"},
		{args: []string{"list"}, env: map[string]string{"APIKEY_PREFIX": "Live"}, code: 2, stderr: `invalid APIKEY_PREFIX "Live": may hold only a-z, 0-9 and _ (1 to 32 characters; default ak)`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			fresh := filepath.Join(t.TempDir(), "untouched.db")
			vars := map[string]string{"APIKEY_DB": e.vars["APIKEY_DB"]}
			if tc.env != nil || tc.code == 2 {
				vars["APIKEY_DB"] = fresh
			}
			for k, v := range tc.env {
				vars[k] = v
			}
			ee := &env{t: t, vars: vars}
			want(t, ee.run(tc.args...), tc.code, "", "apikey: "+tc.stderr+"\n")
			if _, err := os.Stat(fresh); err == nil {
				t.Errorf("%q created the database", tc.args)
			}
		})
	}
}

func TestUnreachableDatabase(t *testing.T) {
	t.Parallel()
	const unreachable = "postgres://postgres:hunter2@127.0.0.1:1/test?connect_timeout=2"
	e := newEnv(t)
	for _, args := range [][]string{
		{"--db", unreachable, "list"},
		{"--db", unreachable, "migrate"},
		{"--db", unreachable, "verify", apikeytest.ForgeToken("ak", "AAAAAAAAAAAA", strings.Repeat("s", 32))},
	} {
		start := time.Now()
		r := e.run(args...)
		if r.code != 2 || r.stdout != "" || !strings.HasPrefix(r.stderr, "apikey: cannot reach the database at 127.0.0.1:1: ") ||
			strings.Count(r.stderr, "127.0.0.1:1") != 1 || strings.Contains(r.stderr, "dial") ||
			strings.Count(r.stderr, "\n") != 1 || strings.Contains(r.stderr, "hunter2") || strings.Contains(r.stderr, strings.Repeat("s", 32)) {
			t.Errorf("%q: %+v", args[2:], r)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("%q took %v", args[2:], d)
		}
	}
	dir := filepath.Join(t.TempDir(), "missing", "apikey.db")
	r := e.run("--db", dir, "list")
	if r.code != 2 || !strings.HasPrefix(r.stderr, "apikey: cannot open the database: ") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("missing directory: %+v", r)
	}
}

func TestHelpCommand(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.run("help", "verify")
	if r.code != 0 || !strings.Contains(r.stdout, "Exit status:") {
		t.Errorf("help verify: %+v", r)
	}
	want(t, e.run("help", "nope"), 2, "", "apikey: unknown help topic: run \"apikey help\" for the list of commands\n")
	if r := e.run(); r.code != 0 || !strings.Contains(r.stdout, "Available Commands:") {
		t.Errorf("no arguments: %+v", r)
	}
}

// Input no store can keep is refused as bad input (exit 2 for a flag the
// CLI parses, 1 for a value the Manager refuses), never reported as
// trouble with the database, on either backend.
func TestCLIRefusesBadInput(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.vars["APIKEY_DB"] = databaseFor(t, backend)
			want(t, e.run("create", "--name", "far", "--expires", "9999-12-31T23:59:59-23:59"), 2, "",
				"apikey: invalid --expires \"9999-12-31T23:59:59-23:59\": must be between the years 1 and 9999 in UTC\n")
			want(t, e.run("list", "--search", "a\x00b"), 1, "", "apikey: invalid search: contains a control character\n")
			want(t, e.run("list", "--owner", "\xff"), 1, "", "apikey: invalid owner: not valid UTF-8\n")
			want(t, e.run("create", "--name", "n", "--owner", "o\x00"), 1, "", "apikey: invalid owner: contains a control character\n")
			want(t, e.run("list", "--json"), 0, "{\n  \"keys\": []\n}\n", "")
		})
	}
}

// TestVersionNotDevel checks that version never prints Go's "(devel)" placeholder
// and that --json carries the same.
func TestVersionNotDevel(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.run("version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "apikey ") || strings.Contains(r.stdout, "(devel)") {
		t.Errorf("version: %+v", r)
	}
	r = e.run("version", "--json")
	var v versionInfo
	if err := json.Unmarshal([]byte(r.stdout), &v); r.code != 0 || err != nil || v.Version == "" || v.Version == "(devel)" || v.Go == "" {
		t.Errorf("version --json: %+v (%v)", r, err)
	}
}
