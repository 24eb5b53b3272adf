package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-apikey/apikey/apikeytest"
)

// githubKey is a key pair that signs leak reports as GitHub does; tests
// cannot reach GitHub, so they sign with their own.
type githubKey struct {
	id   string
	priv *ecdsa.PrivateKey
}

func newGithubKey(t *testing.T, id string) *githubKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &githubKey{id: id, priv: priv}
}

// writeKeysFile writes the keys as GitHub's public keys endpoint lists
// them and returns the file's path.
func writeKeysFile(t *testing.T, dir string, keys ...*githubKey) string {
	t.Helper()
	type entry struct {
		KeyIdentifier string `json:"key_identifier"`
		Key           string `json:"key"`
		IsCurrent     bool   `json:"is_current"`
	}
	var doc struct {
		PublicKeys []entry `json:"public_keys"`
	}
	for _, k := range keys {
		der, err := x509.MarshalPKIXPublicKey(&k.priv.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		doc.PublicKeys = append(doc.PublicKeys, entry{k.id, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), true})
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "github-keys.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// postLeaks sends body to POST /v1/leaks signed with k (nil: unsigned).
func postLeaks(t *testing.T, base string, k *githubKey, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest("POST", base+"/v1/leaks", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if k != nil {
		digest := sha256.Sum256([]byte(body))
		sig, err := ecdsa.SignASN1(rand.Reader, k.priv, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Github-Public-Key-Identifier", k.id)
		req.Header.Set("Github-Public-Key-Signature", base64.StdEncoding.EncodeToString(sig))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestServeLeakReports runs the binary with --leak-keys and a per-owner
// policy on port 0 and sends it a signed report, on SQLite and
// PostgreSQL: the leaked keys are labelled, revoked or not as the policy
// says, listed on the admin site and known as revoked to scan.
func TestServeLeakReports(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			env := []string{"APIKEY_DB=" + databaseFor(t, backend)}
			run := func(stdin string, args ...string) result { return execute(t, dir, stdin, env, args...) }
			mk := func(args ...string) string {
				r := run("", append([]string{"create"}, args...)...)
				if r.code != 0 {
					t.Fatalf("create %q: %+v", args, r)
				}
				return strings.TrimSpace(r.stdout)
			}
			loud := mk("--name", "loud", "--owner", "acme")
			calm := mk("--name", "calm", "--owner", "calm corp")
			if r := run("correct horse battery staple\n", "admin", "create-user", "ada@example.com"); r.code != 0 {
				t.Fatalf("admin create-user: %+v", r)
			}
			gh := newGithubKey(t, "bcb53661c06b4728e59d897fb6165d5c9cda0fd9cdf9d09ead458168deb7518c")
			keys := writeKeysFile(t, dir, gh)
			s := startServe(t, dir, env, "--leak-keys", keys, "--leak-policy-owner", "calm corp=notify")

			entries := []map[string]string{
				{"token": loud, "type": "apikey_token", "url": "https://github.com/acme/app/blob/main/.env", "source": "content"},
				{"token": apikeytest.WrongSecret(loud), "type": "apikey_token", "url": "https://github.com/x/y", "source": "commit"},
				{"token": calm, "type": "apikey_token", "url": "https://gist.github.com/calm/1", "source": "gist_content"},
			}
			body, _ := json.Marshal(entries)
			status, answer := postLeaks(t, s.url, gh, string(body))
			if status != 200 {
				t.Fatalf("POST /v1/leaks: %d %s", status, answer)
			}
			var labels []struct {
				TokenHash string `json:"token_hash"`
				TokenType string `json:"token_type"`
				Label     string `json:"label"`
			}
			if err := json.Unmarshal(answer, &labels); err != nil {
				t.Fatal(err)
			}
			for i, want := range []string{"true_positive", "false_positive", "true_positive"} {
				sum := sha256.Sum256([]byte(entries[i]["token"]))
				if i >= len(labels) || labels[i].Label != want || labels[i].TokenHash != hex.EncodeToString(sum[:]) || labels[i].TokenType != "apikey_token" {
					t.Errorf("labels %+v: entry %d, want %s", labels, i, want)
				}
			}
			if bytes.Contains(answer, []byte(apikeytest.SecretOf(loud))) {
				t.Errorf("the answer repeats a key: %s", answer)
			}
			// A forged report changes nothing.
			forger := newGithubKey(t, gh.id)
			calmOnly, _ := json.Marshal(entries[2:])
			if status, answer := postLeaks(t, s.url, forger, string(calmOnly)); status != 401 || !bytes.Contains(answer, []byte(`"code":"invalid_signature"`)) {
				t.Errorf("a report signed by another key: %d %s", status, answer)
			}
			if status, _ := postLeaks(t, s.url, nil, string(calmOnly)); status != 401 {
				t.Errorf("an unsigned report: %d", status)
			}

			// The policy: acme's key is revoked, calm corp's only recorded.
			want(t, run("", "verify", loud), 1, "rejected: revoked\n", "")
			if r := run("", "verify", calm); r.code != 0 {
				t.Errorf("calm corp's key (policy notify) no longer verifies: %+v", r)
			}
			leakedFile := filepath.Join(dir, "leaked.txt")
			if err := os.WriteFile(leakedFile, []byte("KEY="+loud+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if r := run("", "scan", leakedFile); r.code != 0 || !strings.HasSuffix(r.stdout, " revoked\n") {
				t.Errorf("scan of the revoked leaked key: %+v", r)
			}

			// The admin site lists both leaks.
			jar, _ := cookiejar.New(nil)
			client := &http.Client{Jar: jar}
			resp, err := client.PostForm(s.url+"/admin/login", url.Values{"email": {"ada@example.com"}, "password": {"correct horse battery staple"}, "next": {"/admin/leaks"}})
			if err != nil {
				t.Fatal(err)
			}
			page, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			loudID, calmID := strings.Split(loud, "_")[1], strings.Split(calm, "_")[1]
			for _, want := range []string{"<h1>Leaks</h1>", loudID, calmID, "https://github.com/acme/app/blob/main/.env", "gist_content", "calm corp", ">notify<", ">revoke<"} {
				if !strings.Contains(string(page), want) {
					t.Errorf("the admin leaks page (%d at %s) lacks %q", resp.StatusCode, resp.Request.URL, want)
				}
			}

			s.stop(t)
			logs := s.stderr.String()
			if !strings.Contains(logs, "apikey: leaked key reported") || !strings.Contains(logs, "key_id="+loudID) {
				t.Errorf("the log does not record the leak:\n%s", logs)
			}
			for _, tok := range []string{loud, calm} {
				if strings.Contains(logs, apikeytest.SecretOf(tok)) {
					t.Errorf("the log holds a secret:\n%s", logs)
				}
			}
		})
	}
}

// TestServeLeakFlags checks that bad leak flags are usage errors reported
// before the database is touched.
func TestServeLeakFlags(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"public_keys": []}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"--leak-policy", "disable"}, `apikey: invalid --leak-policy "disable": disable is not available yet (keys have no state that can be undone): want revoke or notify` + "\n"},
		{[]string{"--leak-policy", "ignore"}, `apikey: invalid --leak-policy "ignore": want revoke or notify` + "\n"},
		{[]string{"--leak-policy-owner", "acme"}, `apikey: invalid --leak-policy-owner "acme": want OWNER=ACTION, such as acme=notify` + "\n"},
		{[]string{"--leak-policy-owner", "acme=disable"}, `apikey: invalid --leak-policy-owner "acme=disable": disable is not available yet (keys have no state that can be undone): want revoke or notify` + "\n"},
		{[]string{"--leak-policy-owner", "acme=notify", "--leak-policy-owner", "acme=revoke"}, `apikey: invalid --leak-policy-owner "acme=revoke": owner "acme" is given twice` + "\n"},
		{[]string{"--leak-keys", filepath.Join(dir, "missing.json")}, "apikey: --leak-keys: open " + filepath.Join(dir, "missing.json") + ": no such file or directory\n"},
		{[]string{"--leak-keys", bad}, "apikey: --leak-keys " + bad + ": no keys\n"},
	} {
		want(t, e.run(append([]string{"serve", "--addr", "127.0.0.1:0"}, tc.args...)...), 2, "", tc.stderr)
	}
	if _, err := os.Stat(e.vars["APIKEY_DB"]); !os.IsNotExist(err) {
		t.Errorf("bad leak flags touched the database: %v", err)
	}
}
