package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// raceEnabled is set by race_test.go when the tests run with -race, so
// that the binary is built the same way and reuses the cached packages.
var raceEnabled bool

var (
	binDir    string // removed by TestMain
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "apikey-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// binary builds the apikey command once per test binary and returns its
// path.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		path := filepath.Join(binDir, "apikey")
		args := []string{"build", "-o", path}
		if raceEnabled {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		binPath = path
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// execute runs the binary in dir with the environment of the test less
// every APIKEY_ variable, plus env.
func execute(t *testing.T, dir, stdin string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "APIKEY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run apikey %q: %v", args, err)
	}
	return r
}

// TestBinary builds the command and runs create, verify, revoke and verify
// again, on the default SQLite file and on PostgreSQL.
func TestBinary(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			var env []string
			if backend == "postgres" {
				env = []string{"APIKEY_DB=" + postgresURL(t)}
			}
			run := func(stdin string, args ...string) result { return execute(t, dir, stdin, env, args...) }

			r := run("", "create", "--name", "demo")
			token := strings.TrimSuffix(r.stdout, "\n")
			if r.code != 0 || !strings.Contains(r.stderr, "it will not be shown again") {
				t.Fatalf("create: %+v", r)
			}
			id := strings.Split(token, "_")[1]
			if backend == "sqlite" {
				if _, err := os.Stat(filepath.Join(dir, "apikey.db")); err != nil {
					t.Errorf("create did not make ./apikey.db: %v", err)
				}
			}
			want(t, run("", "verify", token), 0, "valid: "+id+" (demo)\n", "")
			want(t, run(token+"\n", "verify"), 0, "valid: "+id+" (demo)\n", "")
			r = run("", "revoke", id)
			if r.code != 0 || !strings.HasPrefix(r.stdout, "revoked: "+id) {
				t.Errorf("revoke: %+v", r)
			}
			r = run("", "verify", token)
			if r.code != 1 || !strings.Contains(r.stdout, "revoked") {
				t.Errorf("verify after revoke: %+v", r)
			}
			want(t, run("", "show", "AAAAAAAAAAAA"), 1, "", "apikey: no key with id \"AAAAAAAAAAAA\"\n")
			want(t, run("", "list", "--bogus"), 2, "", "apikey: unknown flag: --bogus\n")
		})
	}
}

func TestBinaryUnreachable(t *testing.T) {
	t.Parallel()
	r := execute(t, t.TempDir(), "", []string{"APIKEY_DB=postgres://postgres@127.0.0.1:1/test?connect_timeout=2"}, "list")
	if r.code != 2 || r.stderr != "apikey: cannot reach the database at 127.0.0.1:1: connection refused\n" || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("unreachable database: %+v", r)
	}
	r = execute(t, t.TempDir(), "", nil, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "apikey ") {
		t.Errorf("version: %+v", r)
	}
}
