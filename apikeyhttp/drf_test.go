package apikeyhttp_test

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyhttp"
	"github.com/go-apikey/apikey/memstore"
)

// TestImportedDRFKey checks that a key imported from DRF API Key passes
// the middleware in its own form, in DRF API Key's own header
// ("Authorization: Api-Key <key>") and in X-Api-Key, and that a refusal
// logs its key id and never its secret.
func TestImportedDRFKey(t *testing.T) {
	const secret = "Vrbpu3AMmt3RRgBWfd3pGwqdgpKQa7zq"
	key := "AbCd1234." + secret
	m, err := apikey.NewManager(memstore.New(), apikey.Config{UsageFlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha512.Sum512([]byte(key))
	rec, err := m.NewDRFRecord(apikey.DRFKey{Prefix: "AbCd1234", HashedKey: "sha512$$" + hex.EncodeToString(sum[:]), Name: "drf", Created: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Import(t.Context(), []*apikey.Record{rec}); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	h := mustNew(t, m, apikeyhttp.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))}).Handler(echo)
	for _, form := range [][2]string{{"Authorization", "Api-Key " + key}, {"Authorization", "Bearer " + key}, {"X-Api-Key", key}} {
		r := httptest.NewRequest("GET", "/x", nil)
		r.Header.Set(form[0], form[1])
		w := serve(h, r)
		if w.Code != http.StatusOK || w.Body.String() != "key:drf8AbCd1234" {
			t.Errorf("%s %q: %d %q, want 200 key:drf8AbCd1234", form[0], strings.Fields(form[1])[0], w.Code, w.Body)
		}
	}
	r := httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("X-Api-Key", "AbCd1234."+strings.Repeat("x", 32))
	if w := serve(h, r); w.Code != http.StatusUnauthorized {
		t.Errorf("wrong secret: %d, want 401", w.Code)
	}
	out := logs.String()
	if !strings.Contains(out, "key_id=drf8AbCd1234") || strings.Contains(out, strings.Repeat("x", 32)) || strings.Contains(out, secret) {
		t.Errorf("log of the refusal should name key_id=drf8AbCd1234 and no secret:\n%s", out)
	}
}
