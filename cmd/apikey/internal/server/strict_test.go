package server_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/cmd/apikey/internal/server"
)

// TestStrictRevocation checks ?strict on revoke and delete: 200 (or 204)
// with the number of acknowledging instances once every live instance has
// applied the change, 504 not_acknowledged naming the others when the wait
// ends (the change applied all the same), and the Manager's default when
// the parameter is absent.
func TestStrictRevocation(t *testing.T) {
	ctx := context.Background()
	cfg := apikey.Config{StrictTimeout: 300 * time.Millisecond, StaleAfter: 100 * time.Millisecond}
	f := newFixture(t, options{cfg: cfg})
	// A live instance that never applies anything.
	if err := f.store.PutInstance(ctx, apikey.Instance{ID: "ghost-id", Name: "ghost"}, time.Minute); err != nil {
		t.Fatal(err)
	}

	k := f.create(t, `{"name":"strict"}`)
	start := time.Now()
	r := f.do(t, req{method: "POST", path: "/v1/keys/" + k.ID + "/revoke?strict=true", token: f.admin})
	p := wantProblem(t, r, http.StatusGatewayTimeout, "not_acknowledged", "strict revoke with an instance that never acknowledges")
	if !slices.Equal(p.Instances, []string{"ghost"}) || p.Detail != "The change is applied, but not every instance acknowledged it in time." {
		t.Errorf("not_acknowledged problem %+v, want the instance ghost named", p)
	}
	if d := time.Since(start); d < cfg.StrictTimeout {
		t.Errorf("the strict revoke answered after %v, before StrictTimeout (%v)", d, cfg.StrictTimeout)
	}
	if got, err := f.m.Get(ctx, k.ID); err != nil || !got.Revoked() {
		t.Errorf("after a strict revoke answered not_acknowledged: %+v, %v; want the key revoked", got, err)
	}

	k = f.create(t, `{"name":"deleted strictly"}`)
	r = f.do(t, req{method: "DELETE", path: "/v1/keys/" + k.ID + "?strict=true", token: f.admin})
	wantProblem(t, r, http.StatusGatewayTimeout, "not_acknowledged", "strict delete with an instance that never acknowledges")
	if _, err := f.m.Get(ctx, k.ID); err == nil {
		t.Error("after a strict delete answered not_acknowledged, the key is still there")
	}

	// Not strict: no wait, no header.
	k = f.create(t, `{"name":"lax"}`)
	r = f.do(t, req{method: "POST", path: "/v1/keys/" + k.ID + "/revoke?strict=false", token: f.admin})
	mustStatus(t, r, http.StatusOK, "revoke ?strict=false")
	if h := r.header.Get(server.AcknowledgedHeader); h != "" {
		t.Errorf("a revoke that is not strict has %s: %s", server.AcknowledgedHeader, h)
	}
	for _, q := range []string{"?strict=maybe", "?strict=true&strict=false"} {
		k = f.create(t, `{"name":"bad"}`)
		r = f.do(t, req{method: "POST", path: "/v1/keys/" + k.ID + "/revoke" + q, token: f.admin})
		if p := wantProblem(t, r, http.StatusBadRequest, "invalid_input", "revoke "+q); p.Field != "strict" {
			t.Errorf("revoke %s: field %q, want strict", q, p.Field)
		}
	}

	// Every live instance has applied everything: 200 and the count.
	if err := f.store.RemoveInstance(ctx, "ghost-id"); err != nil {
		t.Fatal(err)
	}
	if err := f.store.PutInstance(ctx, apikey.Instance{ID: "fresh-id", Name: "fresh", AckedSeq: 1 << 40}, time.Minute); err != nil {
		t.Fatal(err)
	}
	k = f.create(t, `{"name":"acknowledged"}`)
	r = f.do(t, req{method: "POST", path: "/v1/keys/" + k.ID + "/revoke?strict=true", token: f.admin})
	mustStatus(t, r, http.StatusOK, "strict revoke, acknowledged")
	var got key
	r.json(t, &got)
	if got.RevokedAt == nil || r.header.Get(server.AcknowledgedHeader) != "1" {
		t.Errorf("strict revoke: %s, %s = %q; want the revoked key and 1", r.body, server.AcknowledgedHeader, r.header.Get(server.AcknowledgedHeader))
	}
	k = f.create(t, `{"name":"acknowledged delete"}`)
	r = f.do(t, req{method: "DELETE", path: "/v1/keys/" + k.ID + "?strict=1", token: f.admin})
	mustStatus(t, r, http.StatusNoContent, "strict delete, acknowledged")
	if r.header.Get(server.AcknowledgedHeader) != "1" {
		t.Errorf("strict delete: %s = %q, want 1", server.AcknowledgedHeader, r.header.Get(server.AcknowledgedHeader))
	}
}

// TestStrictByDefault: with Config.StrictRevocation (apikey serve
// --strict-revocation), revoke is strict unless ?strict=false.
func TestStrictByDefault(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, options{cfg: apikey.Config{StrictRevocation: true, StrictTimeout: 300 * time.Millisecond, StaleAfter: 100 * time.Millisecond}})
	if err := f.store.PutInstance(ctx, apikey.Instance{ID: "ghost-id", Name: "ghost"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	k := f.create(t, `{"name":"strict by default"}`)
	r := f.do(t, req{method: "POST", path: "/v1/keys/" + k.ID + "/revoke", token: f.admin})
	wantProblem(t, r, http.StatusGatewayTimeout, "not_acknowledged", "revoke on a strict server")
	k = f.create(t, `{"name":"not this time"}`)
	r = f.do(t, req{method: "POST", path: "/v1/keys/" + k.ID + "/revoke?strict=false", token: f.admin})
	mustStatus(t, r, http.StatusOK, "revoke ?strict=false on a strict server")
}
