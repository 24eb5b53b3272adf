package main

import (
	"context"
	"crypto/rand"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/go-apikey/apikey/sqlite"
)

// execSQL runs query directly on the database db names (a --db value), as
// someone tampering with it would.
func execSQL(t *testing.T, db, query string) {
	t.Helper()
	ctx := context.Background()
	if strings.HasPrefix(db, "postgres://") {
		conn, err := pgx.Connect(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, query); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return
	}
	s, err := sqlite.Open(ctx, strings.TrimPrefix(db, "sqlite:"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.DB().ExecContext(ctx, query); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// tamper is, per backend, a statement that breaks a revocation guard, and
// the words the check must name it with.
var tamper = map[string]struct{ query, names string }{
	"sqlite":   {"DROP TRIGGER apikey_keys_revocation_final", "trigger apikey_keys_revocation_final is missing"},
	"postgres": {"ALTER TABLE apikey_keys DISABLE TRIGGER apikey_keys_guard", "trigger apikey_keys_guard on apikey_keys is disabled"},
}

// TestMigrateCheck: migrate --check reports an unmigrated or tampered
// database with exit status 2, naming what is wrong, and migrate no longer
// calls a broken database up to date.
func TestMigrateCheck(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			db := databaseFor(t, backend)
			r := e.run("--db", db, "migrate", "--check")
			if r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, "failed its integrity check") ||
				!strings.Contains(r.stderr, "run apikey migrate") || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("migrate --check before migrate: %+v", r)
			}
			if r := e.run("--db", db, "migrate"); r.code != 0 || !strings.HasSuffix(r.stdout, backend+" database is up to date\n") {
				t.Fatalf("migrate: %+v", r)
			}
			want(t, e.run("--db", db, "migrate", "--check"), 0, backend+" database is intact\n", "")

			execSQL(t, db, tamper[backend].query)
			for _, args := range [][]string{{"migrate", "--check"}, {"migrate"}} {
				r := e.run(append([]string{"--db", db}, args...)...)
				if r.code != 2 || r.stdout != "" || !strings.HasPrefix(r.stderr, "apikey: the "+backend+" database failed its integrity check: ") ||
					!strings.Contains(r.stderr, tamper[backend].names) || strings.Count(r.stderr, "\n") != 1 {
					t.Errorf("%s on a tampered database: %+v, want exit 2 naming %q", args, r, tamper[backend].names)
				}
			}

			want(t, e.run("--db", db, "migrate", "--check", "--grant", "x"), 2, "",
				"apikey: --check and --grant cannot be combined: --check changes nothing\n")
			if backend == "sqlite" {
				want(t, e.run("--db", db, "migrate", "--grant", "x"), 2, "",
					"apikey: --grant needs a PostgreSQL database: SQLite has no roles\n")
			}
		})
	}
}

// TestMigrateGrant makes a role that owns nothing, grants it with
// migrate --grant, and runs the commands as that role.
func TestMigrateGrant(t *testing.T) {
	db := databaseFor(t, "postgres")
	e := newEnv(t)
	role := "apikey_cli_svc_" + strings.ToLower(rand.Text()[:10])
	execSQL(t, db, "CREATE ROLE "+role+" LOGIN")
	t.Cleanup(func() { // before the schema is dropped: DROP OWNED revokes the grants
		execSQL(t, db, "DROP OWNED BY "+role)
		execSQL(t, db, "DROP ROLE "+role)
	})
	// The migrations are applied (and said so) before the grant fails.
	r0 := e.run("--db", db, "migrate", "--grant", "no_such_role_"+role)
	want(t, result{r0.code, "", r0.stderr}, 2, "",
		`apikey: postgres: grant: there is no role "no_such_role_`+role+`": create it first (CREATE ROLE ... LOGIN)`+"\n")
	if !strings.HasPrefix(r0.stdout, "applied 0001_create_keys.sql\n") {
		t.Errorf("migrate --grant of an unknown role: stdout %q, want the migrations applied", r0.stdout)
	}
	r := e.run("--db", db, "migrate", "--grant", role)
	if r.code != 0 || !strings.Contains(r.stdout, `GRANT SELECT, INSERT ON TABLE "`) || !strings.Contains(r.stdout, `"apikey_events" TO "`+role+`";`) ||
		!strings.HasSuffix(r.stdout, "postgres database is up to date\n") || r.stderr != "" {
		t.Fatalf("migrate --grant: %+v", r)
	}

	u, err := url.Parse(db)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	svc := u.String()
	want(t, e.run("--db", svc, "migrate"), 0, "postgres database is up to date\n", "")
	want(t, e.run("--db", svc, "migrate", "--check"), 0, "postgres database is intact\n", "")
	e.vars["APIKEY_DB"] = svc
	token, id := e.create("--name", "as the service role")
	want(t, e.run("verify", token), 0, "valid: "+id+" (as the service role)\n", "")
	if r := e.run("revoke", id); r.code != 0 {
		t.Fatalf("revoke as the service role: %+v", r)
	}
	if r := e.run("verify", token); r.code != 1 || !strings.Contains(r.stdout, "revoked") {
		t.Errorf("verify of the revoked key as the service role: %+v", r)
	}
	// The role cannot undo it.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, svc)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range []string{
		"UPDATE apikey_keys SET revoked_at = NULL",
		"ALTER TABLE apikey_keys DISABLE TRIGGER apikey_keys_guard",
		"DROP TRIGGER apikey_keys_guard ON apikey_keys",
	} {
		if _, err := conn.Exec(ctx, q); err == nil {
			t.Errorf("the service role could run %q", q)
		}
	}
}

// TestServeCheckIntegrity: with --check-integrity, /readyz answers 503
// once the database is tampered with; without it, it does not look.
func TestServeCheckIntegrity(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			db := databaseFor(t, backend)
			env := []string{"APIKEY_DB=" + db}
			if r := execute(t, dir, "", env, "migrate"); r.code != 0 {
				t.Fatalf("migrate: %+v", r)
			}
			checked := startServe(t, dir, env, "--check-integrity")
			plain := startServe(t, dir, env)
			// A probe is retried: under the load of the whole test command,
			// one integrity check may outlast /readyz's 3 s bound.
			ready := call(t, "GET", checked.url+"/readyz", "", "", "")
			for try := 0; ready.status != 200 && try < 5; try++ {
				time.Sleep(time.Second)
				ready = call(t, "GET", checked.url+"/readyz", "", "", "")
			}
			expect(t, "readyz with the check", ready, 200, "")

			execSQL(t, db, tamper[backend].query)
			expect(t, "readyz with the check, tampered", call(t, "GET", checked.url+"/readyz", "", "", ""), 503, "unavailable")
			expect(t, "readyz without the check, tampered", call(t, "GET", plain.url+"/readyz", "", "", ""), 200, "")
			deadline := time.Now().Add(5 * time.Second)
			for !strings.Contains(checked.stderr.String(), tamper[backend].names) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if logs := checked.stderr.String(); !strings.Contains(logs, tamper[backend].names) {
				t.Errorf("the 503 is not logged with its reason:\n%s", logs)
			}
			checked.stop(t)
			plain.stop(t)
		})
	}
}
