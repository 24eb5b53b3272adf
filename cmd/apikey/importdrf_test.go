package main

import (
	"context"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/sha512"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/postgres/pgtest"
)

// drfRowSpec is one row of a DRF API Key table made by the tests, as a
// custom model with an organization foreign key and a note would hold it.
type drfRowSpec struct {
	prefix, hashed, name string
	created              time.Time
	revoked              bool
	expiry               *time.Time
	org                  int
	note                 string
}

const drfTestSecret = "Vrbpu3AMmt3RRgBWfd3pGwqdgpKQa7zq"

func sha512Hex(s string) string {
	sum := sha512.Sum512([]byte(s))
	return "sha512$$" + hex.EncodeToString(sum[:])
}

func pbkdf2Django(t *testing.T, key string) string {
	dk, err := pbkdf2.Key(sha256.New, key, []byte("somesalt"), 1000, 32)
	if err != nil {
		t.Fatal(err)
	}
	return "pbkdf2_sha256$1000$somesalt$" + base64.StdEncoding.EncodeToString(dk)
}

// drfTestRows returns the rows of the tests: four that import (active,
// revoked, expired, legacy) and two that cannot (an unknown algorithm, a
// prefix that is not one).
func drfTestRows(t *testing.T) []drfRowSpec {
	created := time.Date(2024, 3, 4, 5, 6, 7, 891011000, time.UTC)
	past := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	return []drfRowSpec{
		{prefix: "Activ001", hashed: sha512Hex("Activ001." + drfTestSecret), name: "active", created: created, org: 7, note: "vip"},
		{prefix: "Revok001", hashed: sha512Hex("Revok001." + drfTestSecret), name: "revoked", created: created, revoked: true, org: 7},
		{prefix: "Expir001", hashed: sha512Hex("Expir001." + drfTestSecret), name: "expired", created: created, expiry: &past, org: 8},
		{prefix: "Legcy001", hashed: pbkdf2Django(t, "Legcy001."+drfTestSecret), name: "legacy\tname", created: created, org: 8},
		{prefix: "Unkno001", hashed: "md5$salt$0123", name: "unknown", created: created, org: 9},
		{prefix: "Bad-0001", hashed: sha512Hex("Bad-0001." + drfTestSecret), name: "bad prefix", created: created, org: 9},
	}
}

// drfSQLite writes rows into a Django-like SQLite file, in table.
func drfSQLite(t *testing.T, table string, rows []drfRowSpec) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "django.sqlite3")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Django's own DDL for the model, plus the columns of a custom model.
	if _, err := db.Exec(`CREATE TABLE "` + table + `" ("created" datetime NOT NULL, "name" varchar(50) NOT NULL,
		"revoked" bool NOT NULL, "expiry_date" datetime NULL, "hashed_key" varchar(150) NOT NULL,
		"prefix" varchar(8) NOT NULL UNIQUE, "id" varchar(150) NOT NULL PRIMARY KEY,
		"organization_id" bigint NOT NULL, "note" varchar(50) NULL)`); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		var expiry, note any
		if r.expiry != nil {
			expiry = r.expiry.Format("2006-01-02 15:04:05.999999")
		}
		if r.note != "" {
			note = r.note
		}
		if _, err := db.Exec(`INSERT INTO "`+table+`" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.created.Format("2006-01-02 15:04:05.999999"), r.name, r.revoked, expiry, r.hashed, r.prefix, r.prefix+"."+r.hashed, r.org, note); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// drfDumpdata writes rows as "manage.py dumpdata" would, with the objects
// of another model around them.
func drfDumpdata(t *testing.T, model string, rows []drfRowSpec) string {
	t.Helper()
	objs := []any{map[string]any{"model": "auth.group", "pk": 1, "fields": map[string]any{"name": "staff"}}}
	for _, r := range rows {
		fields := map[string]any{
			"prefix": r.prefix, "hashed_key": r.hashed, "created": r.created.Format("2006-01-02T15:04:05.000Z"),
			"name": r.name, "revoked": r.revoked, "expiry_date": nil, "organization": r.org, "note": nil,
		}
		if r.expiry != nil {
			fields["expiry_date"] = r.expiry.Format("2006-01-02T15:04:05.000Z")
		}
		if r.note != "" {
			fields["note"] = r.note
		}
		objs = append(objs, map[string]any{"model": model, "pk": r.prefix + "." + r.hashed, "fields": fields})
	}
	b, err := json.MarshalIndent(objs, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "keys.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// drfPostgres writes rows into table in a fresh schema of the test server
// and returns the source URL.
func drfPostgres(t *testing.T, table string, rows []drfRowSpec) string {
	t.Helper()
	url := pgtest.SchemaDSN(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE "`+table+`" ("created" timestamp with time zone NOT NULL, "name" varchar(50) NOT NULL,
		"revoked" boolean NOT NULL, "expiry_date" timestamp with time zone NULL, "hashed_key" varchar(150) NOT NULL,
		"prefix" varchar(8) NOT NULL UNIQUE, "id" varchar(150) NOT NULL PRIMARY KEY,
		"organization_id" bigint NOT NULL, "note" varchar(50) NULL)`); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		var note any
		if r.note != "" {
			note = r.note
		}
		if _, err := conn.Exec(ctx, `INSERT INTO "`+table+`" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			r.created, r.name, r.revoked, r.expiry, r.hashed, r.prefix, r.prefix+"."+r.hashed, r.org, note); err != nil {
			t.Fatal(err)
		}
	}
	return url
}

// TestImportDRF imports the same rows from each kind of source into each
// backend and checks the keys, the refusals, the audit log and a second
// run.
func TestImportDRF(t *testing.T) {
	rows := drfTestRows(t)
	const table = "orgs_organizationapikey"
	sources := map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return drfSQLite(t, table, rows) },
		"dumpdata": func(t *testing.T) string { return drfDumpdata(t, "orgs.organizationapikey", rows) },
		"postgres": func(t *testing.T) string { return drfPostgres(t, table, rows) },
	}
	// dumpdata writes milliseconds; the databases, microseconds.
	createdPrecision := map[string]time.Duration{"sqlite": time.Microsecond, "dumpdata": time.Millisecond, "postgres": time.Microsecond}
	for _, backend := range backends() {
		for _, kind := range []string{"sqlite", "dumpdata", "postgres"} {
			t.Run(kind+"_into_"+backend, func(t *testing.T) {
				t.Parallel()
				source := sources[kind](t)
				e := newEnv(t)
				e.vars["APIKEY_DB"] = databaseFor(t, backend)
				args := []string{"import", "drf", source, "--table", table, "--owner-column", "organization_id", "--scope", "legacy:*"}

				// A dry run writes nothing.
				r := e.run(append(args, "--dry-run")...)
				if r.code != exitRefused || !strings.Contains(r.stdout, "import  drf8Activ001  prefix Activ001  \"active\" owner \"7\"\n") ||
					!strings.Contains(r.stdout, "(revoked)") || !strings.Contains(r.stdout, "(legacy pbkdf2_sha256)") ||
					!strings.Contains(r.stdout, "refuse  prefix Unkno001: invalid hashed_key: algorithm \"md5\"") ||
					!strings.Contains(r.stdout, "refuse  prefix Bad-0001: invalid prefix") ||
					!strings.Contains(r.stdout, "would import 4 of 6 keys (1 revoked, 1 expired, 1 with a legacy hash); would skip 0 already imported; refused 2\n") {
					t.Fatalf("dry run: %+v", r)
				}
				if l := e.run("list", "--json"); l.code != 0 || strings.Join(strings.Fields(l.stdout), "") != `{"keys":[]}` {
					t.Fatalf("a dry run wrote keys: %+v", l)
				}

				r = e.run(args...)
				if r.code != exitRefused || !strings.HasPrefix(r.stdout, "imported 4 of 6 keys (1 revoked, 1 expired, 1 with a legacy hash); skipped 0 already imported; refused 2\n") ||
					!strings.Contains(r.stdout, "refused prefix Unkno001: ") || !strings.Contains(r.stderr, "import: 6 keys in ") ||
					!strings.Contains(r.stderr, "apikey: 2 rows were not imported") || strings.Contains(r.stdout+r.stderr, drfTestSecret) {
					t.Fatalf("import: %+v", r)
				}
				for key, want := range map[string]string{
					"Activ001." + drfTestSecret:            "valid: drf8Activ001 (active)\n",
					"Revok001." + drfTestSecret:            "rejected: revoked\n",
					"Expir001." + drfTestSecret:            "rejected: expired\n",
					"Legcy001." + drfTestSecret:            "valid: drf8Legcy001 (legacy name)\n",
					"Legcy001." + drfTestSecret[:31] + "x": "rejected: invalid\n",
					"Unkno001." + drfTestSecret:            "rejected: invalid\n",
				} {
					if v := e.run("verify", key); v.stdout != want {
						t.Errorf("verify %s: %+v, want %q", key[:8], v, want)
					}
				}
				store := openStore(t, e.vars["APIKEY_DB"])
				rec, err := store.Lookup(context.Background(), "drf8Legcy001")
				if err != nil || !strings.HasPrefix(rec.Hash, "sha256$") {
					t.Errorf("legacy digest after the first use: %v, %v; want sha256$...", rec, err)
				}
				rec, err = store.Lookup(context.Background(), "drf8Activ001")
				if err != nil || rec.Prefix != apikey.DRFIssuer || rec.Owner != "7" || rec.Metadata["note"] != "vip" || len(rec.Metadata) != 1 ||
					len(rec.Scopes) != 1 || rec.Scopes[0] != "legacy:*" || !rec.CreatedAt.Equal(rows[0].created.Truncate(createdPrecision[kind])) {
					t.Errorf("imported record: %+v, %v", rec, err)
				}
				evs, err := store.ListEvents(context.Background(), apikey.EventQuery{KeyID: "drf8Revok001", Limit: 10})
				if err != nil || len(evs) != 2 || evs[0].Type != apikey.EventRevoked || evs[1].Type != apikey.EventImported || evs[0].Actor != "cli" {
					t.Errorf("audit log of the revoked key: %v, %v", evs, err)
				}

				// Again: nothing twice.
				r = e.run(args...)
				if r.code != exitRefused || !strings.HasPrefix(r.stdout, "imported 0 of 6 keys (0 revoked, 0 expired, 0 with a legacy hash); skipped 4 already imported; refused 2\n") {
					t.Errorf("second import: %+v", r)
				}
				if v := e.run("verify", "Revok001."+drfTestSecret); v.stdout != "rejected: revoked\n" {
					t.Errorf("revoked key after a second import: %+v", v)
				}
			})
		}
	}
}

// TestImportDRFUsage checks the refusals of the command line itself.
func TestImportDRFUsage(t *testing.T) {
	e := newEnv(t)
	notDB := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(notDB, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := drfSQLite(t, "rest_framework_api_key_apikey", nil)
	for _, tc := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"import"}, "apikey: import needs a source system: drf\n"},
		{[]string{"import", "drf"}, "apikey: drf needs exactly one argument: the Django database (a SQLite file, a postgres:// URL) or a dumpdata JSON file\n"},
		{[]string{"import", "drf", notDB}, "apikey: SOURCE " + notDB + " is neither a SQLite database nor a dumpdata JSON file (a JSON array)\n"},
		{[]string{"import", "drf", src, "--table", "x; DROP TABLE y"}, "apikey: invalid --table \"x; DROP TABLE y\": want a table name (letters, digits, _), optionally schema.table\n"},
		{[]string{"import", "drf", src, "--batch", "0"}, "apikey: invalid --batch 0: must be from 1 to 100000\n"},
		{[]string{"import", "drf", src, "--scope", "a b"}, "apikey: invalid --scope \"a b\"\n"},
	} {
		r := e.run(tc.args...)
		if r.code != exitTrouble || r.stderr != tc.stderr {
			t.Errorf("%q: %+v, want exit 2 and %q", tc.args, r, tc.stderr)
		}
	}
	// An empty table imports nothing, successfully.
	if r := e.run("import", "drf", src); r.code != 0 || !strings.HasPrefix(r.stdout, "imported 0 of 0 keys") {
		t.Errorf("empty table: %+v", r)
	}
	// A missing table is trouble, not a refusal.
	if r := e.run("import", "drf", src, "--table", "nope"); r.code != exitTrouble || !strings.Contains(r.stderr, "cannot read the table nope") {
		t.Errorf("missing table: %+v", r)
	}
}

// TestImportDRFColumns checks --owner-column by field name (dumpdata names
// foreign keys after the field) and --ignore-column.
func TestImportDRFColumns(t *testing.T) {
	rows := drfTestRows(t)[:1]
	src := drfDumpdata(t, "rest_framework_api_key.apikey", rows)
	e := newEnv(t)
	if r := e.run("import", "drf", src, "--owner-column", "organization_id", "--ignore-column", "note"); r.code != 0 {
		t.Fatalf("import: %+v", r)
	}
	rec, err := openStore(t, e.vars["APIKEY_DB"]).Lookup(context.Background(), "drf8Activ001")
	if err != nil || rec.Owner != "7" || len(rec.Metadata) != 0 || len(rec.Scopes) != 0 {
		t.Errorf("record: %+v, %v; want owner 7, no metadata, no scopes", rec, err)
	}
	// Without --owner-column, the foreign key is metadata.
	e = newEnv(t)
	if r := e.run("import", "drf", src); r.code != 0 {
		t.Fatalf("import: %+v", r)
	}
	rec, err = openStore(t, e.vars["APIKEY_DB"]).Lookup(context.Background(), "drf8Activ001")
	if err != nil || rec.Owner != "" || rec.Metadata["organization"] != "7" || rec.Metadata["note"] != "vip" {
		t.Errorf("record: %+v, %v; want metadata organization=7 and note=vip", rec, err)
	}
}

// TestImportDRFJSON checks import drf --json: the totals alone, as one
// JSON object, with the refused rows and exit status 1 when there are some,
// in a dry run and a real one.
func TestImportDRFJSON(t *testing.T) {
	t.Parallel()
	const table = "orgs_organizationapikey"
	source := drfSQLite(t, table, drfTestRows(t))
	e := newEnv(t)
	args := []string{"import", "drf", source, "--table", table, "--owner-column", "organization_id", "--json"}
	check := func(r result, want drfReport) {
		t.Helper()
		var got drfReport
		dec := json.NewDecoder(strings.NewReader(r.stdout))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&got); err != nil || dec.More() {
			t.Fatalf("stdout is not one JSON report: %v: %+v", err, r)
		}
		if r.code != exitRefused || r.stderr == "" || !strings.HasSuffix(r.stderr, "apikey: 2 rows were not imported\n") {
			t.Errorf("exit %d, stderr %q; want 1 and the refusal", r.code, r.stderr)
		}
		if len(got.Refused) != 2 || got.Refused[0].Row == "" || !strings.Contains(got.Refused[0].Error+got.Refused[1].Error, `algorithm "md5"`) {
			t.Errorf("refused: %+v", got.Refused)
		}
		got.Refused, want.Refused = nil, nil
		if !reflect.DeepEqual(got, want) {
			t.Errorf("report %+v, want %+v", got, want)
		}
	}
	check(e.run(append(args, "--dry-run")...), drfReport{DryRun: true, Rows: 6, Imported: 4, Revoked: 1, Expired: 1, LegacyHash: 1})
	check(e.run(args...), drfReport{Rows: 6, Imported: 4, Revoked: 1, Expired: 1, LegacyHash: 1})
	check(e.run(args...), drfReport{Rows: 6, Skipped: 4})

	// No refused row: an empty list, exit 0.
	clean := drfSQLite(t, table, drfTestRows(t)[:1])
	r := e.run("import", "drf", clean, "--table", table, "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"refused": []`) || !strings.Contains(r.stdout, `"skipped": 1`) {
		t.Errorf("import --json without refusals: %+v", r)
	}
}
