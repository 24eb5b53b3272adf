package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeytest"
	"github.com/go-apikey/apikey/cmd/apikey/internal/server"
)

// signer is a key pair that signs leak reports as GitHub does.
type signer struct {
	id   string
	priv *ecdsa.PrivateKey
}

func newSigner(t testing.TB, id string) *signer {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &signer{id: id, priv: priv}
}

// pem returns the public key in PEM, as GitHub publishes it.
func (s *signer) pem(t testing.TB) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&s.priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// sign returns the base64 ASN.1 signature of the SHA-256 of body.
func (s *signer) sign(t testing.TB, body string) string {
	t.Helper()
	digest := sha256.Sum256([]byte(body))
	sig, err := ecdsa.SignASN1(rand.Reader, s.priv, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// keysFile is the JSON of GitHub's public keys endpoint for signers.
func keysFile(t testing.TB, signers ...*signer) string {
	t.Helper()
	type entry struct {
		KeyIdentifier string `json:"key_identifier"`
		Key           string `json:"key"`
		IsCurrent     bool   `json:"is_current"`
	}
	var doc struct {
		PublicKeys []entry `json:"public_keys"`
	}
	for i, s := range signers {
		doc.PublicKeys = append(doc.PublicKeys, entry{s.id, s.pem(t), i == 0})
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func leakKeys(t testing.TB, signers ...*signer) server.LeakKeys {
	t.Helper()
	keys, err := server.ParseLeakKeys([]byte(keysFile(t, signers...)))
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// signedReq is a POST /v1/leaks of body signed by s.
func signedReq(t testing.TB, s *signer, body string) req {
	t.Helper()
	return req{method: "POST", path: "/v1/leaks", body: body, contentType: "application/json", header: http.Header{
		server.HeaderLeakKeyID:     {s.id},
		server.HeaderLeakSignature: {s.sign(t, body)},
	}}
}

type label struct {
	TokenHash string `json:"token_hash"`
	TokenType string `json:"token_type"`
	Label     string `json:"label"`
}

func hashOf(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func entry(token, url string) map[string]string {
	return map[string]string{"token": token, "type": "apikey_token", "url": url, "source": "content"}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestLeakReports sends a signed report of real, revoked, foreign and
// made-up tokens and checks the labels, the revocations under the policy,
// the leaks recorded and the audit log, on both backends.
func TestLeakReports(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			gh := newSigner(t, "bcb53661c06b4728e59d897fb6165d5c9cda0fd9cdf9d09ead458168deb7518c")
			old := newSigner(t, "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a")
			f := newFixture(t, options{http: true, backend: backend, leakKeys: leakKeys(t, gh, old),
				leakPolicy: apikey.LeakPolicy{Owners: map[string]apikey.LeakAction{"calm": apikey.LeakNotify}}})
			ctx := context.Background()
			loud, loudToken, err := f.m.Create(ctx, apikey.CreateParams{Name: "loud", Owner: "acme"})
			if err != nil {
				t.Fatal(err)
			}
			calm, calmToken, err := f.m.Create(ctx, apikey.CreateParams{Name: "calm", Owner: "calm"})
			if err != nil {
				t.Fatal(err)
			}
			gone, goneToken, err := f.m.Create(ctx, apikey.CreateParams{Name: "gone"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.m.Revoke(ctx, gone.ID); err != nil {
				t.Fatal(err)
			}
			tokens := []string{
				loudToken,
				apikeytest.WrongSecret(loudToken), // a real id, a made-up secret
				"NMIfyYncKcRALEXAMPLE",
				calmToken,
				goneToken,
				apikeytest.ForgeToken("ak", "UnknownKey00", strings.Repeat("u", 32)),
				"",
			}
			var entries []map[string]string
			for i, tok := range tokens {
				entries = append(entries, entry(tok, fmt.Sprintf("https://github.com/octocat/Hello-World/blob/main/f%d.txt", i)))
			}
			entries[2]["extra"] = "ignored" // members GitHub may add
			body := mustJSON(t, entries)

			r := f.do(t, signedReq(t, gh, body))
			mustStatus(t, r, http.StatusOK, "POST /v1/leaks")
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			var labels []label
			r.json(t, &labels)
			want := []string{"true_positive", "false_positive", "false_positive", "true_positive", "true_positive", "false_positive", "false_positive"}
			if len(labels) != len(want) {
				t.Fatalf("%d labels, want %d: %s", len(labels), len(want), r.body)
			}
			for i, l := range labels {
				if l.Label != want[i] || l.TokenHash != hashOf(tokens[i]) || l.TokenType != "apikey_token" {
					t.Errorf("label %d = %+v, want %s with the token's hash", i, l, want[i])
				}
			}
			for _, tok := range []string{tokens[0], tokens[1], tokens[3], tokens[4], tokens[5]} {
				if strings.Contains(string(r.body), apikeytest.SecretOf(tok)) {
					t.Errorf("the answer repeats a secret: %s", r.body)
				}
			}

			// The policy: acme's key is revoked, calm's only noted.
			v := f.do(t, req{method: "GET", path: "/v1/whoami", token: loudToken})
			wantProblem(t, v, http.StatusUnauthorized, "key_revoked", "the leaked key of acme")
			mustStatus(t, f.do(t, req{method: "GET", path: "/v1/whoami", token: calmToken}), http.StatusOK, "the leaked key of calm (notify)")

			page, err := f.m.Leaks(ctx, apikey.LeakFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Leaks) != 3 {
				t.Fatalf("%d leaks recorded, want 3", len(page.Leaks))
			}
			got := map[string]*apikey.Leak{}
			for _, l := range page.Leaks {
				got[l.KeyID] = l
			}
			for id, want := range map[string]apikey.LeakAction{loud.ID: apikey.LeakRevoke, calm.ID: apikey.LeakNotify, gone.ID: apikey.LeakRevoke} {
				if l := got[id]; l == nil || l.Action != want || l.Source != "content" || !strings.HasPrefix(l.URL, "https://github.com/octocat/") {
					t.Errorf("leak of %s: %+v, want action %s", id, l, want)
				}
			}

			// The audit log: key.leaked with the URL, and the revocation,
			// both by leak-report.
			evs := f.do(t, req{method: "GET", path: "/v1/events?key_id=" + loud.ID, token: f.admin})
			mustStatus(t, evs, http.StatusOK, "GET /v1/events")
			var ep struct {
				Events []struct {
					Type  string `json:"type"`
					Actor string `json:"actor"`
					URL   string `json:"url"`
				} `json:"events"`
			}
			evs.json(t, &ep)
			if len(ep.Events) != 3 || ep.Events[0].Type != "key.leaked" || ep.Events[0].Actor != server.LeakActor ||
				ep.Events[0].URL != "https://github.com/octocat/Hello-World/blob/main/f0.txt" ||
				ep.Events[1].Type != "key.revoked" || ep.Events[1].Actor != server.LeakActor {
				t.Errorf("audit log of the leaked key: %+v", ep.Events)
			}
			if !strings.Contains(f.logs.String(), "apikey: leaked key reported") {
				t.Errorf("no log record of the leak:\n%s", f.logs)
			}

			// A delivery retried, signed with the other key: the same labels,
			// nothing recorded twice.
			r = f.do(t, signedReq(t, old, body))
			mustStatus(t, r, http.StatusOK, "the report again")
			var again []label
			r.json(t, &again)
			for i := range again {
				if again[i] != labels[i] {
					t.Errorf("label %d the second time: %+v, want %+v", i, again[i], labels[i])
				}
			}
			if page, _ := f.m.Leaks(ctx, apikey.LeakFilter{}); len(page.Leaks) != 3 {
				t.Errorf("%d leaks after the repeat, want 3", len(page.Leaks))
			}

			// An empty report is answered with no labels.
			r = f.do(t, signedReq(t, gh, "[]"))
			if r.status != http.StatusOK || strings.TrimSpace(string(r.body)) != "[]" {
				t.Errorf("empty report: %d %s", r.status, r.body)
			}
		})
	}
}

// TestLeakSignature checks that every report without a valid signature of
// a configured key is refused with 401 invalid_signature before its body
// is read as JSON, and changes nothing.
func TestLeakSignature(t *testing.T) {
	gh := newSigner(t, "gh-1")
	stranger := newSigner(t, "gh-1") // the same identifier, another key
	f := newFixture(t, options{http: true, leakKeys: leakKeys(t, gh)})
	_, token, err := f.m.Create(context.Background(), apikey.CreateParams{Name: "victim"})
	if err != nil {
		t.Fatal(err)
	}
	body := mustJSON(t, []map[string]string{entry(token, "https://example.com/x")})
	valid := signedReq(t, gh, body)
	with := func(change func(h http.Header), b string) req {
		rq := valid
		rq.header = valid.header.Clone()
		change(rq.header)
		rq.body = b
		return rq
	}
	cases := map[string]req{
		"no headers":         {method: "POST", path: "/v1/leaks", body: body},
		"no signature":       with(func(h http.Header) { h.Del(server.HeaderLeakSignature) }, body),
		"no identifier":      with(func(h http.Header) { h.Del(server.HeaderLeakKeyID) }, body),
		"unknown identifier": with(func(h http.Header) { h.Set(server.HeaderLeakKeyID, "gh-2") }, body),
		"not base64":         with(func(h http.Header) { h.Set(server.HeaderLeakSignature, "%%%") }, body),
		"not DER": with(func(h http.Header) {
			h.Set(server.HeaderLeakSignature, base64.StdEncoding.EncodeToString([]byte("nope")))
		}, body),
		"another key":     with(func(h http.Header) { h.Set(server.HeaderLeakSignature, stranger.sign(t, body)) }, body),
		"another body":    with(func(h http.Header) {}, body+" "),
		"re-encoded body": with(func(h http.Header) {}, strings.ReplaceAll(body, ",", ", ")),
		"garbage body":    with(func(h http.Header) {}, "\xff{not json"),
	}
	for name, rq := range cases {
		t.Run(name, func(t *testing.T) {
			wantProblem(t, f.do(t, rq), http.StatusUnauthorized, "invalid_signature", name)
		})
	}
	if page, _ := f.m.Leaks(context.Background(), apikey.LeakFilter{}); len(page.Leaks) != 0 {
		t.Errorf("refused reports recorded %d leaks", len(page.Leaks))
	}
	mustStatus(t, f.do(t, req{method: "GET", path: "/v1/whoami", token: token}), http.StatusOK, "the key after refused reports")

	// Header names are case-insensitive.
	rq := valid
	rq.header = http.Header{}
	rq.header["GITHUB-PUBLIC-KEY-IDENTIFIER"] = []string{gh.id}
	rq.header["GITHUB-PUBLIC-KEY-SIGNATURE"] = []string{gh.sign(t, body)}
	mustStatus(t, f.do(t, rq), http.StatusOK, "upper-case header names")

	// Without configured keys, every report is refused.
	none := newFixture(t, options{})
	p := wantProblem(t, none.do(t, signedReq(t, gh, body)), http.StatusUnauthorized, "invalid_signature", "no keys configured")
	if !strings.Contains(p.Detail, "--leak-keys") {
		t.Errorf("detail %q does not say how to configure keys", p.Detail)
	}
}

// TestLeakMalformed checks the answers to signed reports that are not
// well-formed: 400 (or 413, 415) and nothing recorded, never a 5xx.
func TestLeakMalformed(t *testing.T) {
	gh := newSigner(t, "gh")
	f := newFixture(t, options{http: true, leakKeys: leakKeys(t, gh)})
	_, token, err := f.m.Create(context.Background(), apikey.CreateParams{Name: "victim"})
	if err != nil {
		t.Fatal(err)
	}
	good := mustJSON(t, entry(token, ""))
	for _, tc := range []struct {
		name, body  string
		status      int
		code, field string
	}{
		{"empty", "", 400, "invalid_json", ""},
		{"object", "{}", 400, "invalid_json", ""},
		{"null", "null", 400, "invalid_json", ""},
		{"number entry", "[1]", 400, "invalid_json", "[0]"},
		{"null entry", "[" + good + ",null]", 400, "invalid_json", "[1]"},
		{"token a number", `[{"token":5}]`, 400, "invalid_json", "[0].token"},
		{"url an object", `[{"token":"x","url":{}}]`, 400, "invalid_json", "[0].url"},
		{"syntax", "[" + good + ",", 400, "invalid_json", ""},
		{"two values", "[] []", 400, "invalid_json", ""},
		{"not UTF-8", "[{\"token\":\"\xff\"}]", 400, "invalid_json", ""},
		{"url with a control", `[{"token":"x","url":"a\u0000b"}]`, 400, "invalid_input", "[0].url"},
		{"url too long", `[` + good + `,{"token":"x","url":"` + strings.Repeat("u", apikey.MaxLeakURLLength+1) + `"}]`, 400, "invalid_input", "[1].url"},
		{"source too long", `[{"token":"x","source":"` + strings.Repeat("s", 101) + `"}]`, 400, "invalid_input", "[0].source"},
		{"deep", strings.Repeat("[", 20000) + strings.Repeat("]", 20000), 400, "invalid_json", ""},
		{"too large", "[" + strings.Repeat(" ", server.MaxBodyBytes) + "]", 413, "body_too_large", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := wantProblem(t, f.do(t, signedReq(t, gh, tc.body)), tc.status, tc.code, tc.name)
			if p.Field != tc.field {
				t.Errorf("field %q, want %q", p.Field, tc.field)
			}
		})
	}
	rq := signedReq(t, gh, "["+good+"]")
	rq.contentType = "text/plain"
	wantProblem(t, f.do(t, rq), http.StatusUnsupportedMediaType, "unsupported_media_type", "text/plain")
	// One bad entry stops the whole report before anything is done.
	if page, _ := f.m.Leaks(context.Background(), apikey.LeakFilter{}); len(page.Leaks) != 0 {
		t.Errorf("malformed reports recorded %d leaks", len(page.Leaks))
	}
	mustStatus(t, f.do(t, req{method: "GET", path: "/v1/whoami", token: token}), http.StatusOK, "the key after malformed reports")
}

// TestLeakHostile sends a few hundred signed and unsigned reports built
// from hostile values and wants no answer >= 500.
func TestLeakHostile(t *testing.T) {
	gh := newSigner(t, "gh")
	f := newFixture(t, options{http: true, leakKeys: leakKeys(t, gh), leakPolicy: apikey.LeakPolicy{Default: apikey.LeakNotify}})
	_, token, err := f.m.Create(context.Background(), apikey.CreateParams{Name: "victim"})
	if err != nil {
		t.Fatal(err)
	}
	r := mrand.New(mrand.NewPCG(9, 9))
	values := append([]string{token, apikeytest.WrongSecret(token), "API_KEY_" + token, token + token}, oddStrings...)
	jsonValue := func() string {
		switch r.IntN(8) {
		case 0:
			return "null"
		case 1:
			return "12"
		case 2:
			return "[]"
		default:
			b, _ := json.Marshal(values[r.IntN(len(values))])
			return string(b)
		}
	}
	for i := range 400 {
		var entries []string
		for range r.IntN(5) {
			var members []string
			for _, name := range []string{"token", "type", "url", "source", "token"} {
				if r.IntN(3) > 0 {
					members = append(members, `"`+name+`":`+jsonValue())
				}
			}
			entries = append(entries, "{"+strings.Join(members, ",")+"}")
		}
		body := "[" + strings.Join(entries, ",") + "]"
		if r.IntN(10) == 0 {
			body = body[:r.IntN(len(body)+1)]
		}
		rq := signedReq(t, gh, body)
		if r.IntN(5) == 0 {
			rq.header.Set(server.HeaderLeakSignature, []string{"", "x", "%%", "MEQCIQ==", token, gh.sign(t, body+" ")}[r.IntN(6)])
		}
		if res := f.do(t, rq); res.status >= 500 {
			t.Fatalf("request %d: %s: status %d: %s", i, apikey.Redact(body), res.status, res.body)
		}
	}
}

// TestLeakStoreDown checks that a report the store cannot record is 503,
// for the sender to retry.
func TestLeakStoreDown(t *testing.T) {
	gh := newSigner(t, "gh")
	f := newFixture(t, options{http: true, leakKeys: leakKeys(t, gh)})
	_, token, err := f.m.Create(context.Background(), apikey.CreateParams{Name: "victim"})
	if err != nil {
		t.Fatal(err)
	}
	f.store.Close()
	wantProblem(t, f.do(t, signedReq(t, gh, mustJSON(t, []map[string]string{entry(token, "")}))), http.StatusServiceUnavailable, "unavailable", "store down")
}

func TestParseLeakKeys(t *testing.T) {
	a, b := newSigner(t, "a"), newSigner(t, "b")
	keys, err := server.ParseLeakKeys([]byte(keysFile(t, a, b)))
	if err != nil || len(keys) != 2 || !keys["a"].Equal(&a.priv.PublicKey) || !keys["b"].Equal(&b.priv.PublicKey) {
		t.Fatalf("GitHub's format: %v, %v", keys, err)
	}
	bare := mustJSON(t, []map[string]string{{"key_identifier": "a", "key": a.pem(t)}})
	if keys, err := server.ParseLeakKeys([]byte("\n " + bare)); err != nil || len(keys) != 1 {
		t.Errorf("a bare array: %v, %v", keys, err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	pemOf := func(pub any) string {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	}
	for name, data := range map[string]string{
		"empty":          "",
		"not JSON":       "-----BEGIN PUBLIC KEY-----",
		"no keys":        `{"public_keys": []}`,
		"no identifier":  mustJSON(t, []map[string]string{{"key": a.pem(t)}}),
		"duplicate":      mustJSON(t, []map[string]string{{"key_identifier": "a", "key": a.pem(t)}, {"key_identifier": "a", "key": b.pem(t)}}),
		"not PEM":        mustJSON(t, []map[string]string{{"key_identifier": "a", "key": "MFkwEw"}}),
		"not a key":      mustJSON(t, []map[string]string{{"key_identifier": "a", "key": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("x")}))}}),
		"P-384":          mustJSON(t, []map[string]string{{"key_identifier": "a", "key": pemOf(&p384.PublicKey)}}),
		"RSA":            mustJSON(t, []map[string]string{{"key_identifier": "a", "key": pemOf(&rsaKey.PublicKey)}}),
		"wrong member":   `{"keys": [{"key_identifier": "a"}]}`,
		"wrong type":     `[{"key_identifier": 1}]`,
		"trailing comma": `[{"key_identifier": "a", "key": "x"},]`,
	} {
		if keys, err := server.ParseLeakKeys([]byte(data)); err == nil {
			t.Errorf("%s: accepted (%d keys)", name, len(keys))
		}
	}
}
