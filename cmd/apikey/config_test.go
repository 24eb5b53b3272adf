package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// settingsOf runs "apikey settings --json" and returns the settings by
// name.
func settingsOf(t *testing.T, e *env, args ...string) map[string]settingView {
	t.Helper()
	r := e.run(append([]string{"settings", "--json"}, args...)...)
	if r.code != 0 {
		t.Fatalf("settings %q: exit %d: %s", args, r.code, r.stderr)
	}
	var out struct{ Settings []settingView }
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatal(err)
	}
	m := map[string]settingView{}
	for _, s := range out.Settings {
		m[s.Name] = s
	}
	return m
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "apikey.json")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSettingsPrecedence checks flag > environment > file > default, for
// a global setting and for settings of serve, and the derived names.
func TestSettingsPrecedence(t *testing.T) {
	t.Parallel()
	file := writeConfig(t, `{"max-keys-per-owner": 3, "cache-ttl": "2m", "header": ["X-Api-Authorization", "X-Key"], "prefix": "filep"}`)
	for _, tc := range []struct {
		name  string
		env   map[string]string
		args  []string
		value string
		src   string
	}{
		{"default", nil, nil, "0", "default"},
		{"file", map[string]string{"APIKEY_CONFIG": file}, nil, "3", "file"},
		{"file by flag", nil, []string{"--config", file}, "3", "file"},
		{"env over file", map[string]string{"APIKEY_CONFIG": file, "APIKEY_MAX_KEYS_PER_OWNER": "4"}, nil, "4", "env"},
		{"flag over env and file", map[string]string{"APIKEY_CONFIG": file, "APIKEY_MAX_KEYS_PER_OWNER": "4"}, []string{"--max-keys-per-owner", "5"}, "5", "flag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			for k, v := range tc.env {
				e.vars[k] = v
			}
			s := settingsOf(t, e, tc.args...)["max-keys-per-owner"]
			if s.Value != tc.value || s.Source != tc.src || s.Env != "APIKEY_MAX_KEYS_PER_OWNER" {
				t.Errorf("max-keys-per-owner = %+v, want value %s from %s", s, tc.value, tc.src)
			}
		})
	}
	e := newEnv(t)
	e.vars["APIKEY_CACHE_TTL"] = "45s"
	s := settingsOf(t, e, "--config", file)
	if got := s["cache-ttl"]; got.Value != "45s" || got.Source != "env" {
		t.Errorf("cache-ttl = %+v, want 45s from env", got)
	}
	if got := s["header"]; got.Value != "X-Api-Authorization,X-Key" || got.Source != "file" {
		t.Errorf("header = %+v, want the file's list", got)
	}
	if got := s["redis"]; got.Env != "APIKEY_REDIS_ADDR" {
		t.Errorf("redis env = %q, want APIKEY_REDIS_ADDR", got.Env)
	}
	if got := s["db"]; got.Source != "env" || got.Env != "APIKEY_DB" {
		t.Errorf("db = %+v, want from APIKEY_DB", got)
	}
}

// TestSettingsHonoured checks that the CLI applies the Manager settings
// from every source: the owner limit, the prefix and the secret length.
func TestSettingsHonoured(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.vars["APIKEY_CONFIG"] = writeConfig(t, `{"prefix": "acme", "secret-length": 40}`)
	e.vars["APIKEY_MAX_KEYS_PER_OWNER"] = "2"
	token, _ := e.create("--name", "a", "--owner", "o")
	parts := strings.Split(token, "_")
	if parts[0] != "acme" || len(parts[len(parts)-1]) != 40+6 && len(parts[len(parts)-1]) != 40 {
		t.Errorf("key %q: want prefix acme and a 40-character secret", token)
	}
	e.create("--name", "b", "--owner", "o")
	r := e.run("create", "--name", "c", "--owner", "o")
	if r.code != 1 || !strings.Contains(r.stderr, "2") {
		t.Errorf("third key of an owner limited to 2: exit %d, %q", r.code, r.stderr)
	}
	// The flag wins: a higher limit lets the third key through.
	e.create("--name", "c", "--owner", "o", "--max-keys-per-owner", "3")
}

// TestSettingsInvalid checks that a bad setting fails at start, naming the
// setting as it was given and the fix, with exit status 2.
func TestSettingsInvalid(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	file := func(body string) string { return writeConfig(t, body) }
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"env not a number", map[string]string{"APIKEY_MAX_KEYS_PER_OWNER": "lots"}, []string{"list"},
			`apikey: invalid APIKEY_MAX_KEYS_PER_OWNER "lots": want a whole number`},
		{"env negative", map[string]string{"APIKEY_MAX_KEYS_PER_OWNER": "-1"}, []string{"list"},
			`apikey: invalid APIKEY_MAX_KEYS_PER_OWNER -1: want 0 (unlimited) or more`},
		{"flag secret length", nil, []string{"list", "--secret-length", "8"},
			`apikey: invalid --secret-length 8: want 22 to 128 base62 characters (default 32); fewer than 22 carry less than 128 bits`},
		{"env prefix", map[string]string{"APIKEY_PREFIX": "Bad-Prefix"}, []string{"list"},
			`apikey: invalid APIKEY_PREFIX "Bad-Prefix": may hold only a-z, 0-9 and _ (1 to 32 characters; default ak)`},
		{"env bool", map[string]string{"APIKEY_NO_CACHE": "maybe"}, []string{"serve"},
			`apikey: invalid APIKEY_NO_CACHE "maybe": want true or false`},
		{"env duration", map[string]string{"APIKEY_CACHE_TTL": "soon"}, []string{"serve"},
			`apikey: invalid APIKEY_CACHE_TTL "soon": want a duration such as 30s, 5m or 1h`},
		{"env cache ttl", map[string]string{"APIKEY_CACHE_TTL": "-1s"}, []string{"serve"},
			`apikey: invalid APIKEY_CACHE_TTL -1s: must be positive, such as 30s`},
		{"flag credit lease", nil, []string{"serve", "--credit-lease", "-5"},
			`apikey: invalid --credit-lease -5: must not be negative (0 turns leases off)`},
		{"env credit lease", map[string]string{"APIKEY_CREDIT_LEASE": "many"}, []string{"serve"},
			`apikey: invalid APIKEY_CREDIT_LEASE "many": want a whole number`},
		{"flag limit lease", nil, []string{"serve", "--limit-lease", "-1ms"},
			`apikey: invalid --limit-lease -1ms: must be from 0 (leases off) to 1s`},
		{"env limit lease", map[string]string{"APIKEY_LIMIT_LEASE": "2s"}, []string{"serve"},
			`apikey: invalid APIKEY_LIMIT_LEASE 2s: must be from 0 (leases off) to 1s`},
		{"env header", map[string]string{"APIKEY_HEADER": "Authorization"}, []string{"serve"},
			`apikey: invalid APIKEY_HEADER: Authorization is read through Schemes, not Headers`},
		{"none and none", map[string]string{"APIKEY_HEADER": "none"}, []string{"serve", "--scheme", "none"},
			`apikey: APIKEY_HEADER and --scheme are both none: no request could present a key`},
		{"file unknown", map[string]string{"APIKEY_CONFIG": file(`{"adr": ":80"}`)}, []string{"list"},
			`unknown setting "adr"`},
		{"file type", nil, []string{"list", "--config", file(`{"max-keys-per-owner": "five"}`)},
			`apikey.json: want a whole number`},
		{"file list for scalar", nil, []string{"serve", "--config", file(`{"addr": [":80"]}`)},
			`"addr" in `},
		{"file not JSON", nil, []string{"list", "--config", file(`max-keys-per-owner = 5`)},
			`is not a JSON object of settings`},
		{"file missing", nil, []string{"list", "--config", "/nonexistent/apikey.json"},
			`apikey: --config: cannot read the config file: no such file or directory`},
		{"pepper flag", nil, []string{"list", "--pepper", "0123456789abcdef0123"},
			`apikey: --pepper on the command line is visible to every user of the machine: set APIKEY_PEPPER or "pepper" in the config file instead`},
		{"env addr", map[string]string{"APIKEY_ADDR": "nope"}, []string{"serve"},
			`apikey: APIKEY_ADDR: invalid --addr "nope"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &env{t: t, vars: map[string]string{"APIKEY_DB": e.vars["APIKEY_DB"]}}
			for k, v := range tc.env {
				e.vars[k] = v
			}
			r := e.run(tc.args...)
			if r.code != 2 || !strings.Contains(r.stderr, tc.want) || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want 2 and %q", r.code, r.stderr, tc.want)
			}
		})
	}
	if _, err := os.Stat(e.vars["APIKEY_DB"]); !os.IsNotExist(err) {
		t.Errorf("a bad setting touched the database: %v", err)
	}
}

// TestServeSettings starts the binary configured only by a config file
// and the environment: a custom key header (django-apikey's), the
// address from the environment, and checks the first-run lines and the
// redirect of /.
func TestServeSettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "apikey.db")
	cfg := writeConfig(t, `{"header": ["X-Api-Authorization"], "scheme": "none", "db": "`+db+`"}`)
	r := e2eRun(t, dir, []string{"APIKEY_CONFIG=" + cfg}, "create", "--name", "admin", "--scope", "apikey:admin")
	if r.code != 0 {
		t.Fatalf("create: %+v", r)
	}
	token := strings.TrimSpace(r.stdout)
	s := startServe(t, dir, []string{"APIKEY_CONFIG=" + cfg})
	defer s.stop(t)

	req, _ := http.NewRequest("GET", s.url+"/v1/whoami", nil)
	req.Header.Set("X-Api-Authorization", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("key in X-Api-Authorization: status %d, want 200", resp.StatusCode)
	}
	for _, form := range []string{"x-api-key", "bearer"} {
		if got := call(t, "GET", s.url+"/v1/whoami", form, token, ""); got.status != 401 {
			t.Errorf("key as %s, which the settings turned off: status %d, want 401", form, got.status)
		}
	}

	// First run: the admin site and the command that makes its first user.
	out := s.stderr.String()
	for _, line := range []string{
		"apikey: admin site at " + s.url + "/admin/\n",
		"apikey: no admin user yet; make the first one",
		"\n  apikey admin create-user you@example.com\n",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("serve's first lines lack %q:\n%s", line, out)
		}
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noRedirect.Get(s.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/admin/" {
		t.Errorf("GET /: %d to %q, want 302 to /admin/", resp.StatusCode, resp.Header.Get("Location"))
	}
}
