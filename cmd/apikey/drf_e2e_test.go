package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/postgres/pgtest"
)

// drfSrcVar names the folder that holds the Python package
// rest_framework_api_key of DRF API Key 3.1.0, as released
// (scripts/test.sh sets it to ../shared/peers/djangorestframework-api-key-3.1.0/src).
const drfSrcVar = "APIKEY_TEST_DRF_SRC"

// debianPython is the interpreter under which Debian's python3-django and
// python3-djangorestframework import; another python3 may come first on
// PATH.
const debianPython = "/usr/bin/python3"

// djangoKey is one key made by DRF API Key, as testdata/drf/makekeys.py
// prints it.
type djangoKey struct {
	Key    string `json:"key"`
	Name   string `json:"name"`
	Table  string `json:"table"`
	Hasher string `json:"hasher"`
	State  string `json:"state"` // valid, revoked or expired
	Owner  string `json:"owner"`
}

// makeDjangoKeys builds a throw-away Django project (testdata/drf) in a
// temporary directory, with DRF API Key on PYTHONPATH, over the database
// dbSpec ("sqlite:PATH" or "postgres:HOST:PORT:DB:USER:SCHEMA"), makes keys
// with DRF API Key's own create_key, and returns them. With dump set, the
// project also writes "manage.py dumpdata" of its key tables there.
func makeDjangoKeys(t *testing.T, src, dbSpec, dump string) []djangoKey {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata/drf")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(debianPython, "makekeys.py")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PYTHONPATH="+src+string(os.PathListSeparator)+dir, "DRF_DB="+dbSpec, "DRF_DUMP="+dump,
		"PYTHONDONTWRITEBYTECODE=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("makekeys.py: %v\n%s", err, stderr.String())
	}
	var keys []djangoKey
	if err := json.Unmarshal(out, &keys); err != nil {
		t.Fatalf("makekeys.py printed %q: %v", out, err)
	}
	return keys
}

// pythonHas reports whether Debian's python3 imports every module.
func pythonHas(modules ...string) bool {
	return exec.Command(debianPython, "-c", "import "+strings.Join(modules, ", ")).Run() == nil
}

// TestDRFImportRealThing imports keys made by DRF API Key 3.1.0 itself,
// in a Django project on Debian's Django, from its SQLite database, from
// its PostgreSQL database and from its dumpdata output, and verifies
// every one through "apikey serve" with the original plaintext: valid
// keys pass (legacy hashes replaced by the native form on their first
// use), revoked and expired ones are refused as such.
func TestDRFImportRealThing(t *testing.T) {
	src := os.Getenv(drfSrcVar)
	if src == "" {
		t.Skip(drfSrcVar + " is not set: set it to the src folder of djangorestframework-api-key 3.1.0 " +
			"(scripts/test.sh uses ../shared/peers/djangorestframework-api-key-3.1.0/src) to import keys made by DRF API Key itself")
	}
	if _, err := os.Stat(filepath.Join(src, "rest_framework_api_key", "models.py")); err != nil {
		t.Fatalf("%s=%s holds no rest_framework_api_key package: %v", drfSrcVar, src, err)
	}
	if !pythonHas("django", "rest_framework") {
		t.Fatalf("%s does not import django and rest_framework: install Debian's python3-django and python3-djangorestframework (scripts/test.sh does)", debianPython)
	}
	dsn := pgtest.DSN(t)

	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		db := filepath.Join(t.TempDir(), "django.sqlite3")
		keys := makeDjangoKeys(t, src, "sqlite:"+db, "")
		checkDRFImport(t, db, databaseFor(t, "sqlite"), keys)
	})
	t.Run("dumpdata", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		dump := filepath.Join(dir, "keys.json")
		keys := makeDjangoKeys(t, src, "sqlite:"+filepath.Join(dir, "django.sqlite3"), dump)
		checkDRFImport(t, dump, databaseFor(t, "postgres"), keys)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		schema := pgtest.Schema(t, dsn)
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		source := u.String()
		var keys []djangoKey
		if pythonHas("psycopg2") {
			// Django itself against the machine's PostgreSQL.
			port := u.Port()
			if port == "" {
				port = "5432"
			}
			keys = makeDjangoKeys(t, src, strings.Join([]string{"postgres", u.Hostname(), port, strings.TrimPrefix(u.Path, "/"), u.User.Username(), schema}, ":"), "")
		} else {
			// No psycopg2: Django writes SQLite, and its rows are copied.
			t.Logf("%s lacks psycopg2 (Debian's python3-psycopg2): copying Django's SQLite rows into PostgreSQL", debianPython)
			db := filepath.Join(t.TempDir(), "django.sqlite3")
			keys = makeDjangoKeys(t, src, "sqlite:"+db, "")
			copyDRFTables(t, db, source)
		}
		checkDRFImport(t, source, databaseFor(t, "postgres"), keys)
	})
}

// checkDRFImport imports source into the database db with the binary, serves
// it, and checks every key.
func checkDRFImport(t *testing.T, source, db string, keys []djangoKey) {
	t.Helper()
	dir := t.TempDir()
	env := []string{"APIKEY_DB=" + db}
	tables := map[string]int{}
	for _, k := range keys {
		tables[k.Table]++
	}
	r := execute(t, dir, "", env, "import", "drf", source)
	if want := "imported " + strconv.Itoa(tables["rest_framework_api_key_apikey"]) + " of " + strconv.Itoa(tables["rest_framework_api_key_apikey"]) + " keys"; r.code != 0 || !strings.HasPrefix(r.stdout, want) {
		t.Fatalf("import drf: %+v, want %q", r, want)
	}
	r = execute(t, dir, "", env, "import", "drf", source, "--table", "orgs_organizationapikey", "--owner-column", "organization_id")
	if want := "imported " + strconv.Itoa(tables["orgs_organizationapikey"]) + " of "; r.code != 0 || !strings.HasPrefix(r.stdout, want) {
		t.Fatalf("import drf of the custom model: %+v, want %q", r, want)
	}
	r = execute(t, dir, "", env, "import", "drf", source)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "imported 0 of ") {
		t.Fatalf("import drf again: %+v, want nothing imported", r)
	}
	r = execute(t, dir, "", env, "create", "--name", "backend", "--scope", "apikey:verify")
	if r.code != 0 {
		t.Fatalf("create: %+v", r)
	}
	verifier := strings.TrimSpace(r.stdout)

	store := openStore(t, db)
	hashOf := func(id string) string {
		t.Helper()
		rec, err := store.Lookup(context.Background(), id)
		if err != nil {
			t.Fatalf("Lookup %s: %v", id, err)
		}
		return rec.Hash
	}
	before := map[string]string{}
	ids := map[string]string{}
	for _, k := range keys {
		tok, err := apikey.ParseDRFToken(k.Key)
		if err != nil {
			t.Fatalf("%s: %v", k.Name, err)
		}
		ids[k.Key] = tok.ID
		before[k.Key] = hashOf(tok.ID)
		if alg, _, _ := strings.Cut(before[k.Key], "$"); alg != k.Hasher {
			t.Errorf("%s: imported digest %s..., want %s", k.Name, alg, k.Hasher)
		}
	}

	s := startServe(t, dir, env)
	defer s.stop(t)
	for round := 1; round <= 2; round++ {
		for _, k := range keys {
			w := call(t, "GET", s.url+"/v1/whoami", "api-key", k.Key, "")
			switch k.State {
			case "valid":
				if w.status != 200 || w.str("id") != ids[k.Key] || w.str("name") != k.Name || w.str("owner") != k.Owner || w.str("prefix") != apikey.DRFIssuer {
					t.Errorf("round %d, %s (%s): %d %s", round, k.Name, k.Hasher, w.status, w.raw)
				}
			case "revoked":
				expect(t, k.Name, w, 401, "key_revoked")
			case "expired":
				expect(t, k.Name, w, 401, "key_expired")
			}
			after := hashOf(ids[k.Key])
			switch {
			case k.State != "valid" || k.Hasher == "sha512":
				if after != before[k.Key] {
					t.Errorf("%s (%s, %s): digest changed to %.20s...", k.Name, k.Hasher, k.State, after)
				}
			case !strings.HasPrefix(after, "sha256$"):
				t.Errorf("%s (%s): digest after a correct use %.20s..., want the native sha256$", k.Name, k.Hasher, after)
			}
		}
		if round == 1 {
			// A wrong secret never verifies, never upgrades.
			for _, k := range keys {
				last := "a"
				if strings.HasSuffix(k.Key, last) {
					last = "b"
				}
				wrong := k.Key[:len(k.Key)-1] + last
				expect(t, k.Name+" with a wrong secret", call(t, "GET", s.url+"/v1/whoami", "x-api-key", wrong, ""), 401, "invalid_key")
			}
		}
	}
	// The other verify paths: POST /v1/verify and the CLI.
	for _, k := range keys {
		v := call(t, "POST", s.url+"/v1/verify", "bearer", verifier, `{"key":"`+k.Key+`"}`)
		wantCode := map[string]string{"valid": "", "revoked": "key_revoked", "expired": "key_expired"}[k.State]
		if v.status != 200 || v.body["valid"] != (k.State == "valid") || v.str("code") != wantCode {
			t.Errorf("POST /v1/verify %s: %s", k.Name, v.raw)
		}
		c := execute(t, dir, "", env, "verify", k.Key)
		wantOut := map[string]string{"valid": "valid: " + ids[k.Key] + " (" + k.Name + ")\n", "revoked": "rejected: revoked\n", "expired": "rejected: expired\n"}[k.State]
		if c.stdout != wantOut {
			t.Errorf("apikey verify %s: %+v, want %q", k.Name, c, wantOut)
		}
	}
}

// copyDRFTables copies the key tables of Django's SQLite database into
// PostgreSQL (source), with the column types Django gives them there.
func copyDRFTables(t *testing.T, sqlitePath, source string) {
	t.Helper()
	ctx := context.Background()
	lite, err := sql.Open("sqlite", "file:"+sqlitePath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	conn, err := pgx.Connect(ctx, source)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for table, extra := range map[string]string{"rest_framework_api_key_apikey": "", "orgs_organizationapikey": `, "organization_id" integer NOT NULL`} {
		if _, err := conn.Exec(ctx, `CREATE TABLE "`+table+`" ("id" varchar(150) PRIMARY KEY, "prefix" varchar(8) NOT NULL UNIQUE,
			"hashed_key" varchar(150) NOT NULL, "created" timestamp with time zone NOT NULL, "name" varchar(50) NOT NULL,
			"revoked" boolean NOT NULL, "expiry_date" timestamp with time zone NULL`+extra+`)`); err != nil {
			t.Fatal(err)
		}
		cols := "id, prefix, hashed_key, created, name, revoked, expiry_date"
		if extra != "" {
			cols += ", organization_id"
		}
		rows, err := lite.Query(`SELECT ` + cols + ` FROM "` + table + `"`)
		if err != nil {
			t.Fatal(err)
		}
		n := strings.Count(cols, ",") + 1
		for rows.Next() {
			vals := make([]any, n)
			ptrs := make([]any, n)
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals { // Django's SQLite text times, read as UTC
				if s, ok := v.(string); ok && (i == 3 || i == 6) {
					if tm, err := timeValue(s); err == nil {
						vals[i] = tm
					}
				}
			}
			ph := make([]string, n)
			for i := range ph {
				ph[i] = "$" + strconv.Itoa(i+1)
			}
			if _, err := conn.Exec(ctx, `INSERT INTO "`+table+`" (`+cols+`) VALUES (`+strings.Join(ph, ", ")+`)`, vals...); err != nil {
				t.Fatal(err)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
}
