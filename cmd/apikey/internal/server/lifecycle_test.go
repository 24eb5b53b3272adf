package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
)

// TestRollGrace checks POST /v1/keys/{id}/roll with a grace window: both
// secrets verify, the record shows the previous secret, and every bad
// member of the body is a 400 that names it.
func TestRollGrace(t *testing.T) {
	f := newFixture(t, options{http: true})
	ctx := context.Background()
	k, oldTok, err := f.m.Create(ctx, apikey.CreateParams{Name: "rolled"})
	if err != nil {
		t.Fatal(err)
	}
	path := "/v1/keys/" + k.ID + "/roll"
	for _, c := range []struct{ body, field, detail string }{
		{`{"grace":"soon"}`, "grace", `want a duration like 1h, 30m or 7d, not "soon"`},
		{`{"grace":"-1h"}`, "grace", `must be positive, not "-1h"`},
		{`{"grace":"0s"}`, "grace", `must be positive, not "0s"`},
		{`{"grace":"91d"}`, "grace", "must be at most 90d"},
		{`{"grace":"1h","grace_starts":"later"}`, "grace_starts", `must be "first_use" or "now"`},
		{`{"grace_starts":"now"}`, "grace_starts", "needs a grace"},
		{`{"grace_max":"1d"}`, "grace_max", "needs a grace"},
		{`{"grace":"2h","grace_max":"1h"}`, "grace_max", "must be at least the grace (2h0m0s)"},
		{`{"grace":"1h","grace_max":"100d"}`, "grace_max", "must be at most 90d"},
		{`{"grace":"1h","grace_max":"x"}`, "grace_max", `want a duration like 1h, 30m or 7d, not "x"`},
	} {
		r := f.do(t, req{method: "POST", path: path, token: f.admin, body: c.body})
		p := wantProblem(t, r, http.StatusBadRequest, "invalid_input", c.body)
		if p.Field != c.field {
			t.Errorf("%s: field %q, want %q", c.body, p.Field, c.field)
		}
		var raw map[string]any
		_ = json.Unmarshal(r.body, &raw)
		if got, _ := raw["errors"].([]any); len(got) == 0 && p.Detail == "" {
			t.Errorf("%s: no detail in %s", c.body, r.body)
		}
		if !containsReason(r.body, c.detail) {
			t.Errorf("%s: body %s does not say %q", c.body, r.body, c.detail)
		}
	}
	wantProblem(t, f.do(t, req{method: "POST", path: path, token: f.admin, body: `{"grace":1}`}), http.StatusBadRequest, "invalid_json", "grace as a number")
	wantProblem(t, f.do(t, req{method: "POST", path: path, token: f.admin, body: `{"grace":"1h","extra":1}`}), http.StatusBadRequest, "invalid_json", "unknown member")
	if _, err := f.m.Verify(ctx, oldTok); err != nil {
		t.Fatalf("a refused roll changed the key: %v", err)
	}

	r := f.do(t, req{method: "POST", path: path, token: f.admin, body: `{"grace":"1h","grace_max":"2d"}`})
	mustStatus(t, r, http.StatusOK, "roll with grace")
	var rolled struct {
		Token          string `json:"key"`
		PreviousSecret *struct {
			Grace          string     `json:"grace"`
			GraceStarts    string     `json:"grace_starts"`
			GraceStartedAt *time.Time `json:"grace_started_at"`
			GraceEndsAt    *time.Time `json:"grace_ends_at"`
			ExpiresAt      time.Time  `json:"expires_at"`
			Active         bool       `json:"active"`
		} `json:"previous_secret"`
	}
	r.json(t, &rolled)
	p := rolled.PreviousSecret
	if p == nil || p.Grace != "1h0m0s" || p.GraceStarts != "first_use" || p.GraceStartedAt != nil || p.GraceEndsAt != nil ||
		!p.Active || !p.ExpiresAt.Equal(f.clock.Now().UTC().Truncate(time.Microsecond).Add(48*time.Hour)) {
		t.Errorf("roll with grace answered %s", r.body)
	}
	for _, tok := range []string{oldTok, rolled.Token, oldTok} {
		if _, err := f.m.Verify(ctx, tok); err != nil {
			t.Errorf("in the grace window: %v", err)
		}
	}
	got, err := f.m.Get(ctx, k.ID)
	if err != nil || got.PreviousSecret == nil || got.PreviousSecret.GraceStartedAt == nil {
		t.Fatalf("after the first use of the new secret: %+v, %v", got.PreviousSecret, err)
	}
	// An empty body, or none, stops the old secret at once.
	r = f.do(t, req{method: "POST", path: path, token: f.admin, body: `{}`})
	mustStatus(t, r, http.StatusOK, "roll with {}")
	var again struct {
		Token    string          `json:"key"`
		Previous json.RawMessage `json:"previous_secret"`
	}
	r.json(t, &again)
	if again.Previous != nil {
		t.Errorf("roll without grace kept a previous secret: %s", r.body)
	}
	if _, err := f.m.Verify(ctx, rolled.Token); !errors.Is(err, apikey.ErrInvalidKey) {
		t.Errorf("the replaced secret after a roll without grace: %v", err)
	}
}

// containsReason reports whether the problem body says reason somewhere.
func containsReason(body []byte, reason string) bool {
	var p map[string]any
	if json.Unmarshal(body, &p) != nil {
		return false
	}
	b, _ := json.Marshal(p)
	enc, _ := json.Marshal(reason)
	return jsonContains(string(b), string(enc[1:len(enc)-1]))
}

func jsonContains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestDisableEnable checks the routes that disable and enable a key, and
// that a disabled key is refused with 403 key_disabled.
func TestDisableEnable(t *testing.T) {
	f := newFixture(t, options{http: true})
	ctx := context.Background()
	k, tok, err := f.m.Create(ctx, apikey.CreateParams{Name: "pausable", Scopes: []string{"apikey:admin"}})
	if err != nil {
		t.Fatal(err)
	}
	r := f.do(t, req{method: "POST", path: "/v1/keys/" + k.ID + "/disable", token: f.admin})
	mustStatus(t, r, http.StatusOK, "disable")
	var got struct {
		State      string     `json:"state"`
		DisabledAt *time.Time `json:"disabled_at"`
	}
	r.json(t, &got)
	if got.State != "disabled" || got.DisabledAt == nil {
		t.Errorf("disable answered %s", r.body)
	}
	wantProblem(t, f.do(t, req{method: "GET", path: "/v1/whoami", token: tok}), http.StatusForbidden, "key_disabled", "a disabled key calling")
	r = f.do(t, req{method: "POST", path: "/v1/verify", token: f.admin, body: `{"key":"` + tok + `"}`})
	var v struct {
		Valid bool   `json:"valid"`
		Code  string `json:"code"`
	}
	r.json(t, &v)
	if r.status != http.StatusOK || v.Valid || v.Code != "key_disabled" {
		t.Errorf("verify of a disabled key: %d %s", r.status, r.body)
	}
	r = f.do(t, req{method: "GET", path: "/v1/keys?state=disabled", token: f.admin})
	var page struct {
		Keys []key `json:"keys"`
	}
	r.json(t, &page)
	if len(page.Keys) != 1 || page.Keys[0].ID != k.ID {
		t.Errorf("list state=disabled: %s", r.body)
	}
	r = f.do(t, req{method: "POST", path: "/v1/keys/" + k.ID + "/enable", token: f.admin})
	mustStatus(t, r, http.StatusOK, "enable")
	got = struct {
		State      string     `json:"state"`
		DisabledAt *time.Time `json:"disabled_at"`
	}{}
	r.json(t, &got)
	if got.State != "active" || got.DisabledAt != nil {
		t.Errorf("enable answered %s", r.body)
	}
	mustStatus(t, f.do(t, req{method: "GET", path: "/v1/whoami", token: tok}), http.StatusOK, "an enabled key calling")
	if _, err := f.m.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	wantProblem(t, f.do(t, req{method: "POST", path: "/v1/keys/" + k.ID + "/disable", token: f.admin}), http.StatusConflict, "key_revoked", "disable revoked")
	wantProblem(t, f.do(t, req{method: "POST", path: "/v1/keys/" + k.ID + "/enable", token: f.admin}), http.StatusConflict, "key_revoked", "enable revoked")
	wantProblem(t, f.do(t, req{method: "POST", path: "/v1/keys/ZZZZZZZZZZZZ/disable", token: f.admin}), http.StatusNotFound, "not_found", "disable unknown")
	wantProblem(t, f.do(t, req{method: "POST", path: "/v1/keys/" + k.ID + "/disable", token: f.verify}), http.StatusForbidden, "insufficient_scope", "disable with a verify key")
}
