package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-apikey/apikey/apikeytest"

	"github.com/go-apikey/apikey/postgres/pgtest"
)

const dsnVar = "APIKEY_TEST_POSTGRES_DSN"

// result is what one invocation of the command left behind.
type result struct {
	code           int
	stdout, stderr string
}

// env is the environment of in-process invocations: variables, standard
// input and the clock.
type env struct {
	t    *testing.T
	vars map[string]string
	// clock, when set, is the app's clock.
	clock *apikeytest.Clock
	// terminal makes standard input count as a terminal.
	terminal bool
}

// newEnv returns an environment whose database is a fresh SQLite file.
func newEnv(t *testing.T) *env {
	t.Helper()
	return &env{t: t, vars: map[string]string{"APIKEY_DB": filepath.Join(t.TempDir(), "apikey.db")}}
}

// run runs the command in-process with no standard input.
func (e *env) run(args ...string) result {
	e.t.Helper()
	return e.runStdin("", args...)
}

func (e *env) runStdin(stdin string, args ...string) result {
	e.t.Helper()
	var stdout, stderr strings.Builder
	var code int
	if e.clock == nil && !e.terminal {
		code = run(context.Background(), args, strings.NewReader(stdin), &stdout, &stderr, e.getenv)
	} else {
		a := &app{stdin: strings.NewReader(stdin), stdout: &stdout, stderr: &stderr, getenv: e.getenv, now: time.Now}
		if e.clock != nil {
			a.now = e.clock.Now
		}
		if e.terminal {
			a.terminal = func() bool { return true }
		}
		code = a.run(context.Background(), args)
	}
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func (e *env) getenv(name string) string { return e.vars[name] }

// create runs "create" with args and returns the key and its id.
func (e *env) create(args ...string) (token, id string) {
	e.t.Helper()
	r := e.run(append([]string{"create"}, args...)...)
	if r.code != 0 {
		e.t.Fatalf("create %q: exit %d, stderr %q", args, r.code, r.stderr)
	}
	token = strings.TrimSuffix(r.stdout, "\n")
	parts := strings.Split(token, "_")
	if len(parts) < 3 {
		e.t.Fatalf("create printed %q, not a key", r.stdout)
	}
	return token, parts[len(parts)-2]
}

// want checks the exit status and the exact outputs of r.
// adminToken creates a key with the apikey:admin scope through the CLI
// in the database of env and returns its token.
func adminToken(t *testing.T, dir string, env []string) string {
	t.Helper()
	r := execute(t, dir, "", env, "create", "--name", "admin", "--scope", "apikey:admin")
	if r.code != 0 {
		t.Fatalf("create admin: %+v", r)
	}
	return strings.TrimSpace(r.stdout)
}

func want(t *testing.T, r result, code int, stdout, stderr string) {
	t.Helper()
	if r.code != code || r.stdout != stdout || r.stderr != stderr {
		t.Errorf("got exit %d\nstdout %q\nstderr %q\nwant exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr, code, stdout, stderr)
	}
}

// postgresURL returns the URL of a fresh, empty schema in the test
// PostgreSQL database, dropped when the test ends, or skips the test.
func postgresURL(t *testing.T) string {
	t.Helper()
	return pgtest.SchemaDSN(t)
}

// backends returns the databases the lifecycle tests run against, by name:
// always a fresh SQLite file, and a fresh PostgreSQL schema when
// APIKEY_TEST_POSTGRES_DSN is set.
func backends() []string { return []string{"sqlite", "postgres"} }

// databaseFor returns the --db value of a fresh database of the backend.
func databaseFor(t *testing.T, backend string) string {
	t.Helper()
	if backend == "postgres" {
		return postgresURL(t)
	}
	return "sqlite:" + filepath.Join(t.TempDir(), "apikey.db")
}
