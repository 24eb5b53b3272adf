package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/cmd/apikey/internal/server"
	"github.com/go-apikey/apikey/outbox"
)

// TestOpenAPI checks the document against the routing table: every route
// the server registers is documented, and every documented operation is
// served (not 404 or 405).
func TestOpenAPI(t *testing.T) {
	f := newFixture(t, options{http: true})
	r := f.do(t, req{method: "GET", path: "/v1/openapi.json"})
	mustStatus(t, r, http.StatusOK, "openapi.json")
	var doc struct {
		OpenAPI    string                                `json:"openapi"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas         map[string]json.RawMessage `json:"schemas"`
			SecuritySchemes map[string]struct {
				Type   string `json:"type"`
				In     string `json:"in"`
				Name   string `json:"name"`
				Scheme string `json:"scheme"`
			} `json:"securitySchemes"`
			Responses map[string]json.RawMessage `json:"responses"`
		} `json:"components"`
	}
	r.json(t, &doc)
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi %q", doc.OpenAPI)
	}

	documented := map[string]bool{}
	methods := []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}
	for path, item := range doc.Paths {
		for m := range item {
			if slices.Contains(methods, m) {
				documented[strings.ToUpper(m)+" "+path] = true
			} else if m != "parameters" && m != "summary" && m != "description" {
				t.Errorf("path %s: unexpected member %q", path, m)
			}
		}
	}
	registered := map[string]bool{}
	for _, p := range server.Routes() {
		registered[p] = true
		if !documented[p] {
			t.Errorf("route %q is not in the OpenAPI document", p)
		}
	}
	for op := range documented {
		if !registered[op] {
			t.Errorf("the OpenAPI document has %q, which no route serves", op)
		}
	}

	// Every documented operation is served: request it with a fresh key in
	// place of {id}.
	for op := range documented {
		method, path, _ := strings.Cut(op, " ")
		if strings.HasPrefix(path, "/v1/webhooks/{id}") {
			ep, _, err := f.hooks.Create(context.Background(), outbox.NewEndpoint{URL: "https://example.com/hooks"})
			if err != nil {
				t.Fatal(err)
			}
			path = strings.ReplaceAll(path, "{id}", ep.ID)
			if strings.Contains(path, "{delivery}") {
				f.create(t, `{"name":"openapi"}`) // one delivery to ep
				page, err := f.hooks.Deliveries(context.Background(), ep.ID, outbox.DeliveryFilter{})
				if err != nil || len(page.Deliveries) == 0 {
					t.Fatalf("deliveries of a new endpoint: %v, %v", page, err)
				}
				path = strings.ReplaceAll(path, "{delivery}", page.Deliveries[0].ID)
			}
		}
		if strings.Contains(path, "{id}") {
			path = strings.ReplaceAll(path, "{id}", f.create(t, `{"name":"openapi"}`).ID)
		}
		if strings.Contains(path, "{owner}") {
			limits := []apikey.RateLimit{{Name: "requests", Limit: 10, Period: time.Second}}
			if _, err := f.m.SetOwner(context.Background(), "openapi", apikey.OwnerUpdate{RateLimits: &limits}); err != nil {
				t.Fatal(err)
			}
			path = strings.ReplaceAll(path, "{owner}", "openapi")
		}
		rq := req{method: method, path: path, token: f.admin}
		if method == "POST" || method == "PATCH" {
			rq.body = "{}"
		}
		r := f.do(t, rq)
		if r.status == http.StatusNotFound || r.status == http.StatusMethodNotAllowed || r.status >= 500 {
			t.Errorf("%s: status %d: %s", op, r.status, r.body)
		}
	}

	// Named parts.
	for _, name := range []string{"Key", "KeyWithSecret", "Page", "Problem", "VerifyRequest", "VerifyResponse", "CreateKeyRequest", "UpdateKeyRequest",
		"RateLimit", "Credits", "Refill", "Owner", "OwnerRequest", "CreditsRequest", "LimitResult", "CreditsResult"} {
		if doc.Components.Schemas[name] == nil {
			t.Errorf("no schema %s", name)
		}
	}
	// Strict revocation: the parameter, the header and the 504 answer of
	// revoke and delete, and the code in the Problem schema.
	type param struct {
		Name, In string
		Schema   struct{ Type string }
	}
	for _, op := range []struct{ path, method, ok string }{
		{"/v1/keys/{id}/revoke", "post", "200"},
		{"/v1/keys/{id}", "delete", "204"},
	} {
		var o struct {
			Parameters []param
			Responses  map[string]struct {
				Ref     string                     `json:"$ref"`
				Headers map[string]json.RawMessage `json:"headers"`
			}
		}
		if err := json.Unmarshal(doc.Paths[op.path][op.method], &o); err != nil {
			t.Fatalf("%s %s: %v", op.method, op.path, err)
		}
		if !slices.Contains(o.Parameters, param{Name: "strict", In: "query", Schema: struct{ Type string }{"boolean"}}) {
			t.Errorf("%s %s: no boolean query parameter strict", op.method, op.path)
		}
		if o.Responses["504"].Ref != "#/components/responses/NotAcknowledged" {
			t.Errorf("%s %s: 504 is %q, want the NotAcknowledged response", op.method, op.path, o.Responses["504"].Ref)
		}
		if o.Responses[op.ok].Headers[server.AcknowledgedHeader] == nil {
			t.Errorf("%s %s: %s does not document %s", op.method, op.path, op.ok, server.AcknowledgedHeader)
		}
	}
	if doc.Components.Responses["NotAcknowledged"] == nil || !strings.Contains(string(doc.Components.Schemas["Problem"]), `"not_acknowledged"`) ||
		!strings.Contains(string(doc.Components.Schemas["Problem"]), `"instances"`) {
		t.Error("no NotAcknowledged response, or the Problem schema lacks not_acknowledged or instances")
	}

	// Rate limits: every operation that takes a key may answer 429, with
	// Retry-After and the RateLimit fields, and the codes are listed.
	for path, item := range doc.Paths {
		for m, raw := range item {
			var o struct {
				Security  *[]any `json:"security"`
				Responses map[string]struct {
					Ref string `json:"$ref"`
				}
			}
			if !slices.Contains(methods, m) || json.Unmarshal(raw, &o) != nil || (o.Security != nil && len(*o.Security) == 0) {
				continue
			}
			if o.Responses["429"].Ref != "#/components/responses/TooManyRequests" {
				t.Errorf("%s %s: no 429 TooManyRequests answer", m, path)
			}
		}
	}
	var tooMany struct {
		Headers map[string]json.RawMessage `json:"headers"`
	}
	if err := json.Unmarshal(doc.Components.Responses["TooManyRequests"], &tooMany); err != nil ||
		tooMany.Headers["Retry-After"] == nil || tooMany.Headers["RateLimit"] == nil || tooMany.Headers["RateLimit-Policy"] == nil {
		t.Errorf("TooManyRequests: %v, headers %v", err, tooMany.Headers)
	}
	for _, code := range []apikey.Code{apikey.CodeRateLimited, apikey.CodeUsageExceeded} {
		if !strings.Contains(string(doc.Components.Schemas["Problem"]), `"`+string(code)+`"`) {
			t.Errorf("the Problem schema lacks the code %s", code)
		}
	}

	ss := doc.Components.SecuritySchemes
	if ss["ApiKeyAuthorization"].Name != "Authorization" || ss["Bearer"].Scheme != "bearer" || ss["XApiKey"].Name != "X-Api-Key" {
		t.Errorf("security schemes %+v", ss)
	}

	// Every $ref resolves.
	var raw any
	r.json(t, &raw)
	walkObjects(raw, func(v map[string]any) {
		if ref, ok := v["$ref"].(string); ok {
			parts := strings.Split(strings.TrimPrefix(ref, "#/"), "/")
			var node any = raw
			for _, p := range parts {
				m, _ := node.(map[string]any)
				node = m[p]
			}
			if node == nil {
				t.Errorf("unresolved $ref %q", ref)
			}
		}
	})
}

// walkObjects calls visit on every JSON object in v, depth first.
func walkObjects(v any, visit func(map[string]any)) {
	switch v := v.(type) {
	case map[string]any:
		visit(v)
		for _, e := range v {
			walkObjects(e, visit)
		}
	case []any:
		for _, e := range v {
			walkObjects(e, visit)
		}
	}
}

// TestOpenAPIEnums checks that the document lists the states and the
// audited event types exactly as package apikey defines them, wherever it
// enumerates them.
func TestOpenAPIEnums(t *testing.T) {
	f := newFixture(t, options{http: true})
	r := f.do(t, req{method: "GET", path: "/v1/openapi.json"})
	mustStatus(t, r, http.StatusOK, "openapi.json")
	var raw any
	r.json(t, &raw)
	var states, types []string
	for _, s := range apikey.States() {
		states = append(states, string(s))
	}
	for _, e := range apikey.AuditedEventTypes() {
		types = append(types, string(e))
	}
	found := map[string]int{}
	walkObjects(raw, func(v map[string]any) {
		list, ok := v["enum"].([]any)
		if !ok {
			return
		}
		var got []string
		for _, e := range list {
			s, _ := e.(string)
			got = append(got, s)
		}
		for name, want := range map[string][]string{"states": states, "event types": types} {
			if slices.Contains(got, want[0]) {
				found[name]++
				if !slices.Equal(got, want) {
					t.Errorf("an enum of %s is %q, want %q", name, got, want)
				}
			}
		}
	})
	if found["states"] < 2 || found["event types"] < 2 {
		t.Errorf("enums found: %v, want the states and the event types at least twice each (query parameter and schema)", found)
	}
}
