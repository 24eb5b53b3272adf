package main

import (
	"bytes"
	"encoding/json"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeytest"
	"github.com/go-apikey/apikey/internal/mixedtext"
)

// hit is what scanText reports for one token.
type hit struct {
	line, col int
	token     string
}

func scanAll(t *testing.T, r io.Reader) ([]hit, bool) {
	t.Helper()
	var hits []hit
	binary, err := scanText(r, func(line, col int, m apikey.TokenMatch, plain []byte) {
		if string(plain) == "" || m.Token.ID == "" {
			t.Errorf("empty match at %d:%d", line, col)
		}
		hits = append(hits, hit{line, col, string(plain)})
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits, binary
}

// wantHits computes what scanText must report for text, with FindTokens
// over the whole text and lines counted the slow way.
func wantHits(text []byte) []hit {
	var out []hit
	for m := range apikey.FindTokens(text) {
		before := text[:m.Start]
		line := bytes.Count(before, []byte{'\n'}) + 1
		col := m.Start - (bytes.LastIndexByte(before, '\n') + 1) + 1
		out = append(out, hit{line, col, string(text[m.Start:m.End])})
	}
	return out
}

// TestScanTextChunks puts tokens across every chunk boundary, at every
// offset around it, and checks that each is found once, at its line and
// column, whatever the sizes of the reads.
func TestScanTextChunks(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	token := func() string {
		secret := make([]byte, apikey.MinSecretLength+r.IntN(apikey.MaxSecretLength-apikey.MinSecretLength+1))
		for i := range secret {
			secret[i] = "abcXYZ0189"[r.IntN(10)]
		}
		return apikeytest.ForgeToken("my_app", "AbCdEfGhIjKl", string(secret))
	}
	// The boundaries: the buffer holds scanCarry+scanChunk bytes, and moves
	// on by scanChunk.
	bounds := []int{scanCarry + scanChunk, scanCarry + 2*scanChunk}
	for _, bound := range bounds {
		for shift := -2 * apikey.MaxTokenLength; shift <= apikey.MaxTokenLength; shift += 1 + r.IntN(9) {
			tok := token()
			var text []byte
			for len(text) < bound+shift {
				text = append(text, "some text, a line of it\n"...)
			}
			text = text[:bound+shift]
			text = append(text, tok...)
			text = append(text, " and\nmore "...)
			text = append(text, tok...)
			want := wantHits(text)
			if len(want) != 2 {
				t.Fatalf("bound %d shift %d: the text holds %d tokens, want 2", bound, shift, len(want))
			}
			for name, rd := range map[string]io.Reader{
				"whole": bytes.NewReader(text),
				"half":  iotest.HalfReader(bytes.NewReader(text)),
			} {
				got, binary := scanAll(t, rd)
				if binary || !slices.Equal(got, want) {
					t.Fatalf("bound %d shift %d, %s reads: got %v (binary %v), want %v", bound, shift, name, brief(got), binary, brief(want))
				}
			}
		}
	}
}

// TestScanTextMixed checks scanText against FindTokens on 5 MB of mixed
// text with a token every few hundred lines.
func TestScanTextMixed(t *testing.T) {
	var buf bytes.Buffer
	st, err := mixedtext.Write(&buf, 5<<20, mixedtext.Options{Seed: 11, TokenEvery: 300})
	if err != nil {
		t.Fatal(err)
	}
	want := wantHits(buf.Bytes())
	if len(want) != len(st.Tokens) || len(want) < 100 {
		t.Fatalf("FindTokens finds %d tokens in the text, which holds %d", len(want), len(st.Tokens))
	}
	got, _ := scanAll(t, iotest.HalfReader(bytes.NewReader(buf.Bytes())))
	if !slices.Equal(got, want) {
		t.Errorf("scanText found %d tokens, want %d", len(got), len(want))
	}
}

func TestScanTextBinary(t *testing.T) {
	tok := apikeytest.ForgeToken("ak", "AbCdEfGhIjKl", strings.Repeat("s", 32))
	if hits, binary := scanAll(t, strings.NewReader("\x00\x01"+tok)); !binary || hits != nil {
		t.Errorf("NUL at the start: binary %v, hits %v", binary, brief(hits))
	}
	// A NUL past the sniffed bytes: text.
	text := strings.Repeat("x", binarySniff) + "\x00 " + tok
	if hits, binary := scanAll(t, strings.NewReader(text)); binary || len(hits) != 1 {
		t.Errorf("NUL after %d bytes: binary %v, hits %v", binarySniff, binary, brief(hits))
	}
	if hits, binary := scanAll(t, strings.NewReader("")); binary || hits != nil {
		t.Errorf("empty: binary %v, hits %v", binary, brief(hits))
	}
}

// brief shows hits without their secrets.
func brief(hits []hit) []string {
	var out []string
	for _, h := range hits {
		out = append(out, strconv.Itoa(h.line)+":"+strconv.Itoa(h.col)+":"+apikey.Redact(h.token))
	}
	return out
}

// writeFile writes content to dir/name, making directories.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestScan(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.vars["APIKEY_DB"] = databaseFor(t, backend)
			t0 := time.Now().UTC().Truncate(time.Second)
			e.clock = apikeytest.NewClock(t0)
			live, liveID := e.create("--name", "live")
			revoked, revokedID := e.create("--name", "revoked")
			expired, expiredID := e.create("--name", "expiring", "--expires", "1h")
			if r := e.run("revoke", revokedID); r.code != 0 {
				t.Fatal(r)
			}
			e.clock.Set(t0.Add(2 * time.Hour))
			unknown := apikeytest.ForgeToken("ak", "UnknownKey00", strings.Repeat("u", 32))
			wrong := apikeytest.WrongSecret(live) // a known id with a made-up secret

			dir := t.TempDir()
			writeFile(t, dir, "app/.env", "API_KEY="+live+"\nOTHER=1\n")
			writeFile(t, dir, "app/main.go", "package main\n\n// old: "+revoked+"\nconst k = \""+expired+"\"\n")
			writeFile(t, dir, "notes.md", "x\ny\nz "+unknown+" and "+wrong+"\n")
			writeFile(t, dir, ".git/config", live)
			writeFile(t, dir, "app.bin", "\x00\x01"+live)
			writeFile(t, dir, "clean.txt", "nothing here_abcdefghijkl_but text\n")
			if err := os.Symlink(filepath.Join(dir, "app/.env"), filepath.Join(dir, "link.env")); err != nil {
				t.Fatal(err)
			}
			rel := func(p string) string { return filepath.Join(dir, p) }

			r := e.run("scan", dir)
			wantOut := rel("app/.env") + ":1: ak_" + liveID + "_… live\n" +
				rel("app/main.go") + ":3: ak_" + revokedID + "_… revoked\n" +
				rel("app/main.go") + ":4: ak_" + expiredID + "_… expired\n" +
				rel("notes.md") + ":3: ak_UnknownKey00_… unknown\n" +
				rel("notes.md") + ":3: ak_" + liveID + "_… unknown\n"
			want(t, r, 1, wantOut, "scan: 5 findings of 4 keys in 3 files (4 scanned): 1 live, 1 expired, 1 revoked, 2 unknown\n")

			// Offline: the same keys, unchecked; the database is not needed.
			off := newEnv(t)
			off.vars["APIKEY_DB"] = filepath.Join(t.TempDir(), "missing.db")
			r = off.run("scan", "--offline", rel("app"), rel("notes.md"))
			if r.code != 1 || strings.Count(r.stdout, " unchecked\n") != 5 {
				t.Errorf("scan --offline: %+v", r)
			}
			if _, err := os.Stat(off.vars["APIKEY_DB"]); err == nil {
				t.Errorf("scan --offline created the database")
			}
			// Without --offline, a missing SQLite file is trouble, and is not
			// created.
			r = off.run("scan", rel("app"))
			if r.code != 2 || !strings.Contains(r.stderr, "no database at") {
				t.Errorf("scan with a missing database: %+v", r)
			}
			if _, err := os.Stat(off.vars["APIKEY_DB"]); err == nil {
				t.Errorf("scan created the database")
			}
			// Nothing found: silent success, no database needed.
			want(t, off.run("scan", rel("clean.txt")), 0, "", "")

			// Only revoked keys: success.
			r = e.run("scan", rel("app/main.go"))
			if r.code != 1 {
				t.Errorf("scan of a revoked and an expired key: exit %d, want 1", r.code)
			}
			onlyRevoked := writeFile(t, t.TempDir(), "old.txt", "# "+revoked+"\n")
			if r := e.run("scan", onlyRevoked); r.code != 0 || !strings.Contains(r.stdout, " revoked\n") {
				t.Errorf("scan of a revoked key only: %+v, want exit 0", r)
			}

			// JSON.
			r = e.run("scan", "--json", rel("app/.env"), rel("notes.md"))
			var rep struct {
				Files    int `json:"files"`
				Findings []struct {
					Path       string `json:"path"`
					Line       int    `json:"line"`
					Column     int    `json:"column"`
					Key        string `json:"key"`
					KeyID      string `json:"key_id"`
					Status     string `json:"status"`
					RevokedNow bool   `json:"revoked_now"`
				} `json:"findings"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 1 {
				t.Fatalf("scan --json: %+v (%v)", r, err)
			}
			if rep.Files != 2 || len(rep.Findings) != 3 || rep.Findings[0].Path != rel("app/.env") || rep.Findings[0].Line != 1 ||
				rep.Findings[0].Column != 9 || rep.Findings[0].Key != "ak_"+liveID+"_…" || rep.Findings[0].KeyID != liveID ||
				rep.Findings[0].Status != "live" || rep.Findings[2].Column != 62 {
				t.Errorf("scan --json: %+v", rep)
			}

			// Standard input.
			if r := e.runStdin("diff\n+ "+live+"\n", "scan", "-"); r.stdout != "-:2: ak_"+liveID+"_… live\n" || r.code != 1 {
				t.Errorf("scan -: %+v", r)
			}

			// --revoke without a terminal needs --yes; nothing changes.
			r = e.run("scan", "--revoke", rel("app"))
			if r.code != 2 || !strings.Contains(r.stderr, "add --yes") || r.stdout != "" {
				t.Errorf("scan --revoke without a terminal: %+v", r)
			}
			for name, args := range map[string][]string{
				"--revoke --offline": {"scan", "--revoke", "--yes", "--offline", dir},
				"--yes alone":        {"scan", "--yes", dir},
				"--revoke of -":      {"scan", "--revoke", "-"},
				"no path":            {"scan"},
			} {
				if r := e.run(args...); r.code != 2 || r.stdout != "" {
					t.Errorf("%s: %+v, want a usage error", name, r)
				}
			}
			// At a terminal, "n" keeps the keys.
			e.terminal = true
			r = e.runStdin("n\n", "scan", "--revoke", rel("app"))
			if r.code != 1 || !strings.Contains(r.stderr, "Revoke 2 keys ("+liveID+", "+expiredID+")? Revocation is for ever. [y/N] ") ||
				!strings.Contains(r.stderr, "scan: nothing revoked") {
				t.Errorf("scan --revoke, answered n: %+v", r)
			}
			if r := e.run("verify", live); r.code != 0 {
				t.Errorf("the live key no longer verifies after a refused revocation: %+v", r)
			}
			// "y" revokes them; the exit status counts them as revoked.
			r = e.runStdin("y\n", "scan", "--revoke", rel("app"))
			if r.code != 0 || !strings.Contains(r.stdout, "revoked: "+liveID+"\nrevoked: "+expiredID+"\n") {
				t.Errorf("scan --revoke, answered y: %+v", r)
			}
			e.terminal = false
			want(t, e.run("verify", live), 1, "rejected: revoked\n", "")
			r = e.run("scan", rel("app"))
			if r.code != 0 || strings.Count(r.stdout, " revoked\n") != 3 {
				t.Errorf("scan after --revoke: %+v", r)
			}

			// --revoke --yes, in JSON: the unknown keys stay unknown.
			fresh, freshID := e.create("--name", "fresh")
			writeFile(t, dir, "fresh.txt", fresh+"\n"+unknown+"\n")
			r = e.run("scan", "--revoke", "--yes", "--json", rel("fresh.txt"))
			if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 1 {
				t.Fatalf("scan --revoke --yes --json: %+v (%v)", r, err)
			}
			if len(rep.Findings) != 2 || rep.Findings[0].KeyID != freshID || !rep.Findings[0].RevokedNow ||
				rep.Findings[0].Status != "revoked" || rep.Findings[1].Status != "unknown" || rep.Findings[1].RevokedNow {
				t.Errorf("scan --revoke --yes --json: %+v", rep)
			}

			// No output ever holds a secret.
			for _, tok := range []string{live, revoked, expired, unknown, wrong, fresh} {
				secret := apikeytest.SecretOf(tok)
				for _, out := range []string{r.stdout, r.stderr} {
					if strings.Contains(out, secret) {
						t.Errorf("scan printed a secret")
					}
				}
			}
		})
	}
}

// TestScanNeverPrintsSecrets runs the variants of scan and checks that no
// output holds a secret.
func TestScanNeverPrintsSecrets(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	token, _ := e.create("--name", "secret")
	dir := t.TempDir()
	writeFile(t, dir, "a.txt", "KEY="+token+"\n")
	writeFile(t, dir, "b.txt", "KEY_"+token+"X\n") // not a token: glued
	secret := apikeytest.SecretOf(token)
	for _, args := range [][]string{
		{"scan", dir}, {"scan", "--json", dir}, {"scan", "--offline", dir}, {"scan", "--offline", "--json", dir},
		{"scan", filepath.Join(dir, "nope")}, {"scan", "--revoke", dir}, {"scan", token},
	} {
		r := e.run(args...)
		if strings.Contains(r.stdout, secret) || strings.Contains(r.stderr, secret) {
			t.Errorf("%q printed the secret: %+v", args, r)
		}
	}
}

// TestScanUnreadable checks that a path that cannot be read is trouble,
// while what could be read is still reported.
func TestScanUnreadable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := t.TempDir()
	tok := apikeytest.ForgeToken("ak", "AbCdEfGhIjKl", strings.Repeat("s", 32))
	writeFile(t, dir, "a.txt", tok)
	r := e.run("scan", "--offline", filepath.Join(dir, "missing"), filepath.Join(dir, "a.txt"))
	if r.code != 2 || r.stdout != filepath.Join(dir, "a.txt")+":1: ak_AbCdEfGhIjKl_… unchecked\n" ||
		!strings.Contains(r.stderr, "apikey: cannot read "+filepath.Join(dir, "missing")+": no such file or directory") {
		t.Errorf("scan of a missing path: %+v", r)
	}
	if os.Getuid() != 0 { // root reads everything
		locked := writeFile(t, dir, "locked/x.txt", tok)
		if err := os.Chmod(locked, 0); err != nil {
			t.Fatal(err)
		}
		r = e.run("scan", "--offline", dir)
		if r.code != 2 || !strings.Contains(r.stderr, "permission denied") || !strings.Contains(r.stdout, "a.txt:1:") {
			t.Errorf("scan of an unreadable file: %+v", r)
		}
	}
}

// BenchmarkScan measures scanText over 64 MB of mixed text held in
// memory: the scanner's own speed, without the disk (scripts/scanbench.sh
// measures the command over a 1 GB file).
func BenchmarkScan(b *testing.B) {
	var buf bytes.Buffer
	st, err := mixedtext.Write(&buf, 64<<20, mixedtext.Options{Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	text := buf.Bytes()
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		n := 0
		if _, err := scanText(bytes.NewReader(text), func(int, int, apikey.TokenMatch, []byte) { n++ }); err != nil {
			b.Fatal(err)
		}
		if n != len(st.Tokens) {
			b.Fatalf("found %d tokens, want %d", n, len(st.Tokens))
		}
	}
}
