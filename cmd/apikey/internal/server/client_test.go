package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyclient"
	"github.com/go-apikey/apikey/apikeyhttp"
	"github.com/go-apikey/apikey/apikeytest"
	"github.com/go-apikey/apikey/cmd/apikey/internal/server"
)

// service is a real apikey service over HTTP on a fresh SQLite store (the
// fixture of the server's tests), with the tokens that must never appear in
// an error.
type service struct {
	*fixture
	tokens []string
}

func newService(t *testing.T) *service {
	t.Helper()
	f := newFixture(t, options{cfg: apikey.Config{MaxKeysPerOwner: 2}, http: true})
	return &service{fixture: f, tokens: []string{f.admin, f.verify}}
}

func (s *service) client(t *testing.T, token string) *apikeyclient.Client {
	t.Helper()
	c, err := apikeyclient.New(s.ts.URL, token)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkErr fails unless err matches want and, when status is not zero, is
// an *apikeyclient.Error with that status and code. It also checks that no
// token of the service appears in the error text.
func (s *service) checkErr(t *testing.T, what string, err, want error, status int, code apikey.Code) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got error %v, want one matching %v", what, err, want)
		return
	}
	if status != 0 {
		var e *apikeyclient.Error
		if !errors.As(err, &e) {
			t.Errorf("%s: %v is not an *apikeyclient.Error", what, err)
		} else if e.Status != status || e.Code != code {
			t.Errorf("%s: got %d %s, want %d %s", what, e.Status, e.Code, status, code)
		}
	}
	for _, tok := range s.tokens {
		if strings.Contains(err.Error(), tok) {
			t.Errorf("%s: error %q contains a token", what, err)
		}
	}
}

func TestManagement(t *testing.T) {
	s := newService(t)
	c := s.client(t, s.admin)
	ctx := context.Background()
	now := s.clock.Now()

	me, err := c.Whoami(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if me.Name != "admin" || !slices.Equal(me.Scopes, []string{server.ScopeAdmin}) {
		t.Errorf("Whoami: got %+v, want the admin key", me)
	}

	// Create
	expires := now.Add(24 * time.Hour)
	k, token, err := c.Create(ctx, apikey.CreateParams{
		Name: "billing", Owner: "acme", Scopes: []string{"billing:write", "billing:read"},
		Metadata: map[string]string{"env": "prod"}, ExpiresAt: &expires,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.tokens = append(s.tokens, token)
	if k.Name != "billing" || k.Owner != "acme" || !slices.Equal(k.Scopes, []string{"billing:read", "billing:write"}) ||
		k.Metadata["env"] != "prod" || k.ExpiresAt == nil || !k.ExpiresAt.Equal(expires) || k.State != apikey.StateActive {
		t.Errorf("Create: got %+v", k)
	}
	if got, err := s.m.Verify(ctx, token); err != nil || got.ID != k.ID {
		t.Fatalf("the created token does not verify with the Manager: %v", err)
	}

	_, _, err = c.Create(ctx, apikey.CreateParams{Name: ""})
	var ve *apikey.ValidationError
	if !errors.As(err, &ve) || ve.Field != "name" || ve.Reason != "is required" {
		t.Errorf("Create without a name: got %v, want a ValidationError for name", err)
	}
	s.checkErr(t, "Create without a name", err, apikey.ErrInvalidInput, 400, "invalid_input")
	past := now.Add(-time.Hour)
	_, _, err = c.Create(ctx, apikey.CreateParams{Name: "x", ExpiresAt: &past})
	if !errors.As(err, &ve) || ve.Field != "expires_at" {
		t.Errorf("Create with a past expiry: got %v, want a ValidationError for expires_at", err)
	}

	// MaxKeysPerOwner is 2.
	if _, _, err := c.Create(ctx, apikey.CreateParams{Name: "second", Owner: "acme"}); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Create(ctx, apikey.CreateParams{Name: "third", Owner: "acme"})
	s.checkErr(t, "Create past the limit", err, apikey.ErrTooManyKeys, 409, "too_many_keys")

	// Get
	got, err := c.Get(ctx, k.ID)
	if err != nil || got.ID != k.ID || got.Name != "billing" {
		t.Errorf("Get: got %+v, %v", got, err)
	}
	_, err = c.Get(ctx, "AAAAAAAAAAAA")
	s.checkErr(t, "Get of an unknown id", err, apikey.ErrNotFound, 404, "not_found")
	_, err = c.Get(ctx, "../verify")
	s.checkErr(t, "Get of a malformed id", err, apikey.ErrNotFound, 0, "")

	// List
	page, err := c.List(ctx, apikey.KeyFilter{Owner: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Keys) != 2 || page.NextCursor != "" {
		t.Errorf("List owner=acme: got %d keys, cursor %q; want 2 and none", len(page.Keys), page.NextCursor)
	}
	var all []string
	f := apikey.KeyFilter{Limit: 1}
	for i := 0; ; i++ {
		page, err := c.List(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range page.Keys {
			all = append(all, k.ID)
		}
		if page.NextCursor == "" || i > 10 {
			break
		}
		f.Cursor = page.NextCursor
	}
	if len(all) != 4 { // admin, verifier, billing, second
		t.Errorf("paging with limit 1: got %d keys, want 4", len(all))
	}
	if page, err := c.List(ctx, apikey.KeyFilter{Search: "BILL", State: apikey.StateActive}); err != nil || len(page.Keys) != 1 || page.Keys[0].ID != k.ID {
		t.Errorf("List search=BILL: got %+v, %v", page, err)
	}
	if page, err := c.List(ctx, apikey.KeyFilter{Owner: "nobody"}); err != nil || page.Keys == nil || len(page.Keys) != 0 {
		t.Errorf("List of nothing: got %+v, %v; want an empty page", page, err)
	}
	_, err = c.List(ctx, apikey.KeyFilter{Limit: 5000})
	if !errors.As(err, &ve) || ve.Field != "limit" {
		t.Errorf("List limit=5000: got %v, want a ValidationError for limit", err)
	}
	_, err = c.List(ctx, apikey.KeyFilter{State: "sleeping"})
	s.checkErr(t, "List state=sleeping", err, apikey.ErrInvalidInput, 400, "invalid_input")

	// Update
	name, scopes, md := "billing v2", []string{"billing:*"}, map[string]string{"team": "payments"}
	later := now.Add(48 * time.Hour)
	up, err := c.Update(ctx, k.ID, apikey.KeyUpdate{Name: &name, Scopes: &scopes, Metadata: &md, ExpiresAt: &later})
	if err != nil {
		t.Fatal(err)
	}
	if up.Name != name || !slices.Equal(up.Scopes, scopes) || up.Metadata["team"] != "payments" || up.Metadata["env"] != "" ||
		up.ExpiresAt == nil || !up.ExpiresAt.Equal(later) {
		t.Errorf("Update: got %+v", up)
	}
	up, err = c.Update(ctx, k.ID, apikey.KeyUpdate{ClearExpiry: true})
	if err != nil || up.ExpiresAt != nil || up.Name != name {
		t.Errorf("Update clearing the expiry: got %+v, %v", up, err)
	}
	bad := []string{"no spaces"}
	_, err = c.Update(ctx, k.ID, apikey.KeyUpdate{Scopes: &bad})
	if !errors.As(err, &ve) || ve.Field != "scopes" {
		t.Errorf("Update with a bad scope: got %v, want a ValidationError for scopes", err)
	}
	_, err = c.Update(ctx, k.ID, apikey.KeyUpdate{ExpiresAt: &later, ClearExpiry: true})
	if !errors.As(err, &ve) || ve.Field != "expires_at" {
		t.Errorf("Update setting and clearing the expiry: got %v, want a ValidationError for expires_at", err)
	}
	_, err = c.Update(ctx, "AAAAAAAAAAAA", apikey.KeyUpdate{Name: &name})
	s.checkErr(t, "Update of an unknown id", err, apikey.ErrNotFound, 404, "not_found")

	// Roll
	rolled, token2, err := c.Roll(ctx, k.ID, apikey.RollOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.tokens = append(s.tokens, token2)
	if rolled.ID != k.ID || token2 == token || !strings.Contains(token2, k.ID) {
		t.Errorf("Roll: got %+v and a token for another id", rolled)
	}
	if _, err := c.Verify(ctx, token); !errors.Is(err, apikey.ErrInvalidKey) {
		t.Errorf("Verify of the rolled-over token: got %v, want ErrInvalidKey", err)
	}
	if v, err := c.Verify(ctx, token2); err != nil || v.ID != k.ID {
		t.Errorf("Verify of the new token: got %+v, %v", v, err)
	}

	// Roll with a grace window: both secrets verify; then disable, enable.
	graced, token3, err := c.Roll(ctx, k.ID, apikey.RollOptions{Grace: time.Hour, GraceStarts: apikey.GraceNow, GraceMax: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	s.tokens = append(s.tokens, token3)
	if p := graced.PreviousSecret; p == nil || p.Grace != time.Hour || p.GraceStarts != apikey.GraceNow || p.GraceStartedAt == nil || !p.Active {
		t.Errorf("Roll with a grace: previous secret %+v", graced.PreviousSecret)
	}
	for _, tok := range []string{token2, token3} {
		if v, err := c.Verify(ctx, tok); err != nil || v.ID != k.ID {
			t.Errorf("Verify in the grace window: got %+v, %v", v, err)
		}
	}
	_, _, err = c.Roll(ctx, k.ID, apikey.RollOptions{Grace: 2 * time.Hour, GraceMax: time.Hour})
	if !errors.As(err, &ve) || ve.Field != "grace_max" {
		t.Errorf("Roll with grace_max below grace: got %v, want a ValidationError for grace_max", err)
	}
	d, err := c.Disable(ctx, k.ID)
	if err != nil || d.State != apikey.StateDisabled || d.DisabledAt == nil {
		t.Fatalf("Disable: got %+v, %v", d, err)
	}
	if _, err := c.Verify(ctx, token3); !errors.Is(err, apikey.ErrDisabled) {
		t.Errorf("Verify of a disabled key: got %v, want ErrDisabled", err)
	}
	if e, err := c.Enable(ctx, k.ID); err != nil || e.State != apikey.StateActive || e.DisabledAt != nil {
		t.Fatalf("Enable: got %+v, %v", e, err)
	}
	_, err = c.Disable(ctx, "AAAAAAAAAAAA")
	s.checkErr(t, "Disable of an unknown id", err, apikey.ErrNotFound, 404, "not_found")

	// Revoke
	rv, err := c.Revoke(ctx, k.ID)
	if err != nil || rv.State != apikey.StateRevoked || rv.RevokedAt == nil {
		t.Fatalf("Revoke: got %+v, %v", rv, err)
	}
	if again, err := c.Revoke(ctx, k.ID); err != nil || !again.RevokedAt.Equal(*rv.RevokedAt) {
		t.Errorf("Revoke again: got %+v, %v; want the first revocation", again, err)
	}
	_, err = c.Update(ctx, k.ID, apikey.KeyUpdate{Name: &name})
	s.checkErr(t, "Update of a revoked key", err, apikey.ErrFrozen, 409, "key_revoked")
	_, _, err = c.Roll(ctx, k.ID, apikey.RollOptions{})
	s.checkErr(t, "Roll of a revoked key", err, apikey.ErrFrozen, 409, "key_revoked")
	_, err = c.Enable(ctx, k.ID)
	s.checkErr(t, "Enable of a revoked key", err, apikey.ErrFrozen, 409, "key_revoked")
	_, err = c.Revoke(ctx, "AAAAAAAAAAAA")
	s.checkErr(t, "Revoke of an unknown id", err, apikey.ErrNotFound, 404, "not_found")

	// Delete
	if err := c.Delete(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(ctx, k.ID)
	s.checkErr(t, "Get after Delete", err, apikey.ErrNotFound, 404, "not_found")
	err = c.Delete(ctx, k.ID)
	s.checkErr(t, "Delete again", err, apikey.ErrNotFound, 404, "not_found")
	_, _, err = c.Roll(ctx, k.ID, apikey.RollOptions{})
	s.checkErr(t, "Roll of a deleted key", err, apikey.ErrNotFound, 404, "not_found")
}

func TestVerify(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	now := s.clock.Now()
	expires := now.Add(time.Hour)
	k, token, err := s.m.Create(ctx, apikey.CreateParams{Name: "user", Owner: "acme", Scopes: []string{"billing:*"}, ExpiresAt: &expires})
	if err != nil {
		t.Fatal(err)
	}
	_, revoked, err := s.m.Create(ctx, apikey.CreateParams{Name: "revoked"})
	if err != nil {
		t.Fatal(err)
	}
	s.tokens = append(s.tokens, token, revoked)
	if _, err := s.m.Revoke(ctx, strings.Split(revoked, "_")[1]); err != nil {
		t.Fatal(err)
	}
	// A well-formed token for an id that does not exist.
	unknown := strings.Replace(token, k.ID, "AAAAAAAAAAAA", 1)

	// The verify scope suffices; so does admin.
	for _, as := range []string{s.verify, s.admin} {
		c := s.client(t, as)
		got, err := c.Verify(ctx, token)
		if err != nil || got.ID != k.ID || got.Owner != "acme" || got.State != apikey.StateActive {
			t.Fatalf("Verify: got %+v, %v", got, err)
		}
		for _, tt := range []struct {
			name  string
			token string
			want  error
		}{
			{"revoked", revoked, apikey.ErrRevoked},
			{"malformed", "not-a-key", apikey.ErrInvalidKey},
			{"empty", "", apikey.ErrInvalidKey},
			{"bad checksum", apikeytest.BadChecksum(token), apikey.ErrInvalidKey},
			{"unknown", unknown, apikey.ErrInvalidKey},
		} {
			got, err := c.Verify(ctx, tt.token)
			if got != nil || errors.Is(err, apikey.ErrUnavailable) {
				t.Errorf("Verify %s: got a key or an unavailable error (%v)", tt.name, err)
			}
			s.checkErr(t, "Verify "+tt.name, err, tt.want, 0, "")
		}

		got, err = c.VerifyScopes(ctx, token, "billing:read", "billing:write")
		if err != nil || got.ID != k.ID {
			t.Errorf("VerifyScopes granted: got %+v, %v", got, err)
		}
		got, err = c.VerifyScopes(ctx, token, "billing:read", "admin")
		var se *apikeyhttp.ScopeError
		if got != nil || !errors.As(err, &se) || !slices.Equal(se.Required, []string{"billing:read", "admin"}) {
			t.Errorf("VerifyScopes denied: got %+v, %v; want a ScopeError", got, err)
		}
		s.checkErr(t, "VerifyScopes denied", err, apikeyhttp.ErrInsufficientScope, 0, "")
		_, err = c.VerifyScopes(ctx, revoked, "billing:read")
		s.checkErr(t, "VerifyScopes of a revoked key", err, apikey.ErrRevoked, 0, "")
		_, err = c.VerifyScopes(ctx, token, "bad scope")
		var ve *apikey.ValidationError
		if !errors.As(err, &ve) || ve.Field != "scopes" {
			t.Errorf("VerifyScopes with a bad scope: got %v, want a ValidationError for scopes", err)
		}
	}

	// Expiry follows the service's clock.
	s.clock.Add(2 * time.Hour)
	c := s.client(t, s.verify)
	_, err = c.Verify(ctx, token)
	s.checkErr(t, "Verify of an expired key", err, apikey.ErrExpired, 0, "")

	// The verify scope does not reach management: a 403 *Error.
	_, err = c.Get(ctx, k.ID)
	s.checkErr(t, "Get with a verify-only key", err, apikeyhttp.ErrInsufficientScope, 403, "insufficient_scope")
	var se *apikeyhttp.ScopeError
	if !errors.As(err, &se) || !slices.Equal(se.Required, []string{server.ScopeAdmin}) {
		t.Errorf("Get with a verify-only key: got %v, want a ScopeError naming %s", err, server.ScopeAdmin)
	}
	if me, err := c.Whoami(ctx); err != nil || me.Name != "verifier" {
		t.Errorf("Whoami with a verify-only key: got %+v, %v", me, err)
	}
}

// The client's own token refused: management calls get a 401 *Error that
// wraps the matching sentinel; Verify, which must not blame the presented
// key, reports the service as unable to decide.
func TestClientTokenRefused(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	_, user, err := s.m.Create(ctx, apikey.CreateParams{Name: "user"})
	if err != nil {
		t.Fatal(err)
	}
	_, gone, err := s.m.Create(ctx, apikey.CreateParams{Name: "gone", Scopes: []string{server.ScopeAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	s.tokens = append(s.tokens, user, gone)
	if _, err := s.m.Revoke(ctx, strings.Split(gone, "_")[1]); err != nil {
		t.Fatal(err)
	}
	unknown := strings.Replace(user, strings.Split(user, "_")[1], "AAAAAAAAAAAA", 1)
	s.tokens = append(s.tokens, unknown)

	for _, tt := range []struct {
		name  string
		token string
		want  error
		code  apikey.Code
	}{
		{"unknown", unknown, apikey.ErrInvalidKey, "invalid_key"},
		{"revoked", gone, apikey.ErrRevoked, "key_revoked"},
		{"garbage", "hunter2", apikey.ErrInvalidKey, "invalid_key"},
	} {
		c := s.client(t, tt.token)
		_, err := c.Whoami(ctx)
		s.checkErr(t, "Whoami as "+tt.name, err, tt.want, 401, tt.code)
		_, err = c.List(ctx, apikey.KeyFilter{})
		s.checkErr(t, "List as "+tt.name, err, tt.want, 401, tt.code)

		k, err := c.Verify(ctx, user)
		if k != nil || errors.Is(err, apikey.ErrInvalidKey) || errors.Is(err, apikey.ErrRevoked) {
			t.Errorf("Verify as %s: got %+v, %v; want no key and no verdict on the presented key", tt.name, k, err)
		}
		s.checkErr(t, "Verify as "+tt.name, err, apikey.ErrUnavailable, 401, tt.code)
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Verify as %s: error %q contains the client's token", tt.name, err)
		}
	}
}

// The client as the Verifier of apikeyhttp middleware: a Go service
// protected by a remote apikey service.
func TestRemoteMiddleware(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	k, user, err := s.m.Create(ctx, apikey.CreateParams{Name: "user", Owner: "acme", Scopes: []string{"reports:read"}})
	if err != nil {
		t.Fatal(err)
	}
	s.tokens = append(s.tokens, user)
	mw, err := apikeyhttp.New(s.client(t, s.verify), apikeyhttp.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /reports", mw.Handler(apikeyhttp.RequireScopes("reports:read")(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			k, _ := apikey.FromContext(r.Context())
			_, _ = io.WriteString(w, k.ID+" "+k.Owner)
		}))))
	mux.Handle("GET /admin", mw.Handler(apikeyhttp.RequireScopes("admin")(http.NotFoundHandler())))
	app := httptest.NewServer(mux)
	t.Cleanup(app.Close)

	get := func(path, token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, app.URL+path, nil)
		if token != "" {
			req.Header.Set("X-Api-Key", token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 300 {
			var p apikeyhttp.Problem
			_ = json.Unmarshal(body, &p)
			return resp.StatusCode, string(p.Code)
		}
		return resp.StatusCode, string(body)
	}
	check := func(what, path, token string, status int, want string) {
		t.Helper()
		if gotStatus, got := get(path, token); gotStatus != status || got != want {
			t.Errorf("%s: got %d %q, want %d %q", what, gotStatus, got, status, want)
		}
	}
	check("valid key", "/reports", user, 200, k.ID+" acme")
	check("missing key", "/reports", "", 401, "missing_key")
	check("invalid key", "/reports", user[:len(user)-2]+"xx", 401, "invalid_key")
	check("scope denied", "/admin", user, 403, "insufficient_scope")
	if _, err := s.m.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	check("revoked key", "/reports", user, 401, "key_revoked")

	// The apikey service goes down: the protected service answers 503,
	// never a grant.
	s.ts.Close()
	check("service down", "/reports", s.admin, 503, "unavailable")
}

// A store that fails makes the service answer 503; the client reports
// ErrUnavailable and never a key.
func TestUnavailable(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	c := s.client(t, s.admin)
	k, user, err := c.Create(ctx, apikey.CreateParams{Name: "user"})
	if err != nil {
		t.Fatal(err)
	}
	s.tokens = append(s.tokens, user)
	s.store.Close()

	got, err := c.Verify(ctx, user)
	if got != nil {
		t.Errorf("Verify with the store down returned a key")
	}
	s.checkErr(t, "Verify with the store down", err, apikey.ErrUnavailable, 503, "unavailable")
	_, err = c.Get(ctx, k.ID)
	s.checkErr(t, "Get with the store down", err, apikey.ErrUnavailable, 503, "unavailable")

	s.ts.Close()
	got, err = c.Verify(ctx, user)
	if got != nil {
		t.Errorf("Verify with the service down returned a key")
	}
	s.checkErr(t, "Verify with the service down", err, apikey.ErrUnavailable, 0, "")
	var e *apikeyclient.Error
	if errors.As(err, &e) {
		t.Errorf("a transport failure is an *Error: %v", err)
	}
	err = c.Delete(ctx, k.ID)
	s.checkErr(t, "Delete with the service down", err, apikey.ErrUnavailable, 0, "")

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = c.Whoami(cctx)
	if !errors.Is(err, apikey.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("Whoami with a canceled context: got %v, want ErrUnavailable and context.Canceled", err)
	}
}
