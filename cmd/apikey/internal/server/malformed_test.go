package server_test

import (
	"bytes"
	"encoding/base64"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-apikey/apikey/cmd/apikey/internal/server"
)

// TestMalformedRequests sends bad input of every kind over real HTTP and
// checks the exact status and problem code: never a 5xx, on either
// backend.
func TestMalformedRequests(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) { testMalformedRequests(t, backend) })
	}
}

// backends are the stores the HTTP tests run on; postgres skips when
// APIKEY_TEST_POSTGRES_DSN is not set.
var backends = []string{"sqlite", "postgres"}

func testMalformedRequests(t *testing.T, backend string) {
	f := newFixture(t, options{http: true, backend: backend})
	k := f.create(t, `{"name":"target"}`)
	rk := f.create(t, `{"name":"revoked"}`)
	mustStatus(t, f.do(t, req{method: "POST", path: "/v1/keys/" + rk.ID + "/revoke", token: f.admin}), http.StatusOK, "revoke")
	past := f.clock.Now().Add(-time.Hour).Format(time.RFC3339)
	item := "/v1/keys/" + k.ID
	deep := `{"name":"x","metadata":` + strings.Repeat("[", 20_000) + strings.Repeat("]", 20_000) + `}`
	deepVerify := strings.Repeat(`{"key":`, 20_000) + `""` + strings.Repeat("}", 20_000)

	cases := []struct {
		name        string
		method      string
		path        string
		token       string // default: the admin key; "-" for none
		contentType string // default application/json when there is a body; "-" for none
		header      http.Header
		body        string
		status      int
		code        string // "" for answers that are not problems (431 from net/http)
		field       string
	}{
		// Bodies.
		{name: "body over 1 MiB", method: "POST", path: "/v1/keys", body: `{"name":"` + strings.Repeat("a", server.MaxBodyBytes) + `"}`, status: 413, code: "body_too_large"},
		{name: "verify body over 1 MiB", method: "POST", path: "/v1/verify", body: `{"key":"` + strings.Repeat("a", server.MaxBodyBytes) + `"}`, status: 413, code: "body_too_large"},
		{name: "text/plain", method: "POST", path: "/v1/keys", contentType: "text/plain", body: `{"name":"x"}`, status: 415, code: "unsupported_media_type"},
		{name: "no content type", method: "POST", path: "/v1/keys", contentType: "-", body: `{"name":"x"}`, status: 415, code: "unsupported_media_type"},
		{name: "form", method: "POST", path: "/v1/keys", contentType: "application/x-www-form-urlencoded", body: `name=x`, status: 415, code: "unsupported_media_type"},
		{name: "latin1 charset", method: "POST", path: "/v1/keys", contentType: "application/json; charset=latin1", body: `{"name":"x"}`, status: 415, code: "unsupported_media_type"},
		{name: "bad media type", method: "POST", path: "/v1/keys", contentType: "application/json; ;;", body: `{"name":"x"}`, status: 415, code: "unsupported_media_type"},
		{name: "patch text/plain", method: "PATCH", path: item, contentType: "text/plain", body: `{}`, status: 415, code: "unsupported_media_type"},
		{name: "verify text/plain", method: "POST", path: "/v1/verify", token: "verify", contentType: "text/plain", body: `{"key":"x"}`, status: 415, code: "unsupported_media_type"},
		{name: "empty body", method: "POST", path: "/v1/keys", contentType: "application/json", status: 400, code: "invalid_json"},
		{name: "whitespace body", method: "POST", path: "/v1/keys", body: " \n\t", status: 400, code: "invalid_json"},
		{name: "truncated JSON", method: "POST", path: "/v1/keys", body: `{"name":"x"`, status: 400, code: "invalid_json"},
		{name: "syntax error", method: "POST", path: "/v1/keys", body: `{"name":'x'}`, status: 400, code: "invalid_json"},
		{name: "trailing data", method: "POST", path: "/v1/keys", body: `{"name":"x"} {"name":"y"}`, status: 400, code: "invalid_json"},
		{name: "trailing garbage", method: "POST", path: "/v1/keys", body: `{"name":"x"}garbage`, status: 400, code: "invalid_json"},
		{name: "unknown field", method: "POST", path: "/v1/keys", body: `{"name":"x","nmae":"y"}`, status: 400, code: "invalid_json", field: "nmae"},
		{name: "unknown field in patch", method: "PATCH", path: item, body: `{"revoked_at":null}`, status: 400, code: "invalid_json", field: "revoked_at"},
		{name: "unknown field in verify", method: "POST", path: "/v1/verify", body: `{"key":"x","token":"y"}`, status: 400, code: "invalid_json", field: "token"},
		{name: "wrong type name", method: "POST", path: "/v1/keys", body: `{"name":5}`, status: 400, code: "invalid_json", field: "name"},
		{name: "wrong type scopes", method: "POST", path: "/v1/keys", body: `{"name":"x","scopes":"a"}`, status: 400, code: "invalid_json", field: "scopes"},
		{name: "wrong type scope item", method: "POST", path: "/v1/keys", body: `{"name":"x","scopes":[1]}`, status: 400, code: "invalid_json", field: "scopes"},
		{name: "wrong type metadata", method: "POST", path: "/v1/keys", body: `{"name":"x","metadata":["a"]}`, status: 400, code: "invalid_json", field: "metadata"},
		{name: "wrong type expires_at", method: "POST", path: "/v1/keys", body: `{"name":"x","expires_at":1700000000}`, status: 400, code: "invalid_json", field: "expires_at"},
		{name: "wrong type patch name", method: "PATCH", path: item, body: `{"name":true}`, status: 400, code: "invalid_json", field: "name"},
		{name: "wrong type verify key", method: "POST", path: "/v1/verify", body: `{"key":5}`, status: 400, code: "invalid_json", field: "key"},
		{name: "array body", method: "POST", path: "/v1/keys", body: `[{"name":"x"}]`, status: 400, code: "invalid_json"},
		{name: "string body", method: "POST", path: "/v1/keys", body: `"x"`, status: 400, code: "invalid_json"},
		{name: "raw control character", method: "POST", path: "/v1/keys", body: "{\"name\":\"a\x01b\"}", status: 400, code: "invalid_json"},
		{name: "raw newline in string", method: "POST", path: "/v1/keys", body: "{\"name\":\"a\nb\"}", status: 400, code: "invalid_json"},
		{name: "escaped control character", method: "POST", path: "/v1/keys", body: `{"name":"a\u0001b"}`, status: 400, code: "invalid_input", field: "name"},
		{name: "escaped NUL in owner", method: "POST", path: "/v1/keys", body: `{"name":"x","owner":"a\u0000"}`, status: 400, code: "invalid_input", field: "owner"},
		{name: "escaped NUL in metadata", method: "POST", path: "/v1/keys", body: `{"name":"x","metadata":{"a":"\u0000"}}`, status: 400, code: "invalid_input", field: "metadata"},
		{name: "NUL in metadata name", method: "POST", path: "/v1/keys", body: `{"name":"x","metadata":{"\u0000":"a"}}`, status: 400, code: "invalid_input", field: "metadata"},
		{name: "invalid UTF-8", method: "POST", path: "/v1/keys", body: "{\"name\":\"\xff\xfe\"}", status: 400, code: "invalid_json"},
		{name: "invalid UTF-8 in verify", method: "POST", path: "/v1/verify", body: "{\"key\":\"ak_\xc3\"}", status: 400, code: "invalid_json"},
		{name: "bad escape", method: "POST", path: "/v1/keys", body: `{"name":"\x"}`, status: 400, code: "invalid_json"},
		{name: "deeply nested JSON", method: "POST", path: "/v1/keys", body: deep, status: 400, code: "invalid_json"},
		{name: "deeply nested verify", method: "POST", path: "/v1/verify", body: deepVerify, status: 400, code: "invalid_json"},
		{name: "huge number", method: "POST", path: "/v1/keys", body: `{"name":1e999999}`, status: 400, code: "invalid_json", field: "name"},

		// Rules of the Manager and of the expiry forms.
		{name: "no name", method: "POST", path: "/v1/keys", body: `{}`, status: 400, code: "invalid_input", field: "name"},
		{name: "null body", method: "POST", path: "/v1/keys", body: `null`, status: 400, code: "invalid_input", field: "name"},
		{name: "long name", method: "POST", path: "/v1/keys", body: `{"name":"` + strings.Repeat("n", 201) + `"}`, status: 400, code: "invalid_input", field: "name"},
		{name: "bad scope", method: "POST", path: "/v1/keys", body: `{"name":"x","scopes":["a b"]}`, status: 400, code: "invalid_input", field: "scopes"},
		{name: "bad metadata name", method: "POST", path: "/v1/keys", body: `{"name":"x","metadata":{"a b":"c"}}`, status: 400, code: "invalid_input", field: "metadata"},
		{name: "both expiry forms", method: "POST", path: "/v1/keys", body: `{"name":"x","expires_at":"2099-01-01T00:00:00Z","expires_in":"1d"}`, status: 400, code: "invalid_input", field: "expires_in"},
		{name: "bad duration", method: "POST", path: "/v1/keys", body: `{"name":"x","expires_in":"soon"}`, status: 400, code: "invalid_input", field: "expires_in"},
		{name: "empty duration", method: "POST", path: "/v1/keys", body: `{"name":"x","expires_in":""}`, status: 400, code: "invalid_input", field: "expires_in"},
		{name: "negative duration", method: "POST", path: "/v1/keys", body: `{"name":"x","expires_in":"-1h"}`, status: 400, code: "invalid_input", field: "expires_in"},
		{name: "zero duration", method: "POST", path: "/v1/keys", body: `{"name":"x","expires_in":"0s"}`, status: 400, code: "invalid_input", field: "expires_in"},
		{name: "overflowing duration", method: "POST", path: "/v1/keys", body: `{"name":"x","expires_in":"99999999999999999999d"}`, status: 400, code: "invalid_input", field: "expires_in"},
		{name: "bad time", method: "POST", path: "/v1/keys", body: `{"name":"x","expires_at":"tomorrow"}`, status: 400, code: "invalid_input", field: "expires_at"},
		{name: "time without zone", method: "POST", path: "/v1/keys", body: `{"name":"x","expires_at":"2099-01-01T00:00:00"}`, status: 400, code: "invalid_input", field: "expires_at"},
		{name: "time in the past", method: "POST", path: "/v1/keys", body: `{"name":"x","expires_at":"` + past + `"}`, status: 400, code: "invalid_input", field: "expires_at"},
		{name: "expiry past year 9999 in UTC", method: "POST", path: "/v1/keys", body: `{"name":"x","expires_at":"9999-12-31T23:59:59-23:59"}`, status: 400, code: "invalid_input", field: "expires_at"},
		{name: "expiry in year 10000", method: "POST", path: "/v1/keys", body: `{"name":"x","expires_at":"10000-01-01T00:00:00Z"}`, status: 400, code: "invalid_input", field: "expires_at"},
		{name: "expiry before year 1 in UTC", method: "POST", path: "/v1/keys", body: `{"name":"x","expires_at":"0001-01-01T00:00:00+01:00"}`, status: 400, code: "invalid_input", field: "expires_at"},
		{name: "patch expiry past year 9999", method: "PATCH", path: item, body: `{"expires_at":"9999-12-31T23:59:59-23:59"}`, status: 400, code: "invalid_input", field: "expires_at"},
		{name: "patch both expiry forms", method: "PATCH", path: item, body: `{"expires_at":null,"expires_in":"1d"}`, status: 400, code: "invalid_input", field: "expires_in"},
		{name: "patch bad duration", method: "PATCH", path: item, body: `{"expires_in":"1x"}`, status: 400, code: "invalid_input", field: "expires_in"},
		{name: "patch bad time", method: "PATCH", path: item, body: `{"expires_at":"2099-13-01T00:00:00Z"}`, status: 400, code: "invalid_input", field: "expires_at"},
		{name: "patch null name", method: "PATCH", path: item, body: `{"name":null}`, status: 400, code: "invalid_input", field: "name"},
		{name: "patch null scopes", method: "PATCH", path: item, body: `{"scopes":null}`, status: 400, code: "invalid_input", field: "scopes"},
		{name: "patch null metadata", method: "PATCH", path: item, body: `{"metadata":null}`, status: 400, code: "invalid_input", field: "metadata"},
		{name: "patch null expires_in", method: "PATCH", path: item, body: `{"expires_in":null}`, status: 400, code: "invalid_input", field: "expires_in"},
		{name: "patch empty name", method: "PATCH", path: item, body: `{"name":" "}`, status: 400, code: "invalid_input", field: "name"},
		{name: "verify without key", method: "POST", path: "/v1/verify", body: `{}`, status: 400, code: "invalid_input", field: "key"},
		{name: "verify null key", method: "POST", path: "/v1/verify", body: `{"key":null}`, status: 400, code: "invalid_input", field: "key"},
		{name: "verify bad scope", method: "POST", path: "/v1/verify", body: `{"key":"x","scopes":[""]}`, status: 400, code: "invalid_input", field: "scopes"},
		{name: "verify too many scopes", method: "POST", path: "/v1/verify", body: `{"key":"x","scopes":[` + strings.TrimSuffix(strings.Repeat(`"a",`, 101), ",") + `]}`, status: 400, code: "invalid_input", field: "scopes"},

		// Ids and state.
		{name: "unknown id", method: "GET", path: "/v1/keys/AAAAAAAAAAAA", status: 404, code: "not_found"},
		{name: "malformed id", method: "GET", path: "/v1/keys/x", status: 404, code: "not_found"},
		{name: "key as id", method: "GET", path: "/v1/keys/" + k.Token, status: 404, code: "not_found"},
		{name: "encoded slash in id", method: "GET", path: "/v1/keys/a%2Fb", status: 404, code: "not_found"},
		{name: "patch unknown id", method: "PATCH", path: "/v1/keys/AAAAAAAAAAAA", body: `{"name":"x"}`, status: 404, code: "not_found"},
		{name: "revoke unknown id", method: "POST", path: "/v1/keys/AAAAAAAAAAAA/revoke", status: 404, code: "not_found"},
		{name: "roll unknown id", method: "POST", path: "/v1/keys/AAAAAAAAAAAA/roll", status: 404, code: "not_found"},
		{name: "delete unknown id", method: "DELETE", path: "/v1/keys/AAAAAAAAAAAA", status: 404, code: "not_found"},
		{name: "patch revoked", method: "PATCH", path: "/v1/keys/" + rk.ID, body: `{"name":"x"}`, status: 409, code: "key_revoked"},
		{name: "roll revoked", method: "POST", path: "/v1/keys/" + rk.ID + "/roll", status: 409, code: "key_revoked"},

		// Query strings.
		{name: "negative limit", method: "GET", path: "/v1/keys?limit=-1", status: 400, code: "invalid_input", field: "limit"},
		{name: "zero limit", method: "GET", path: "/v1/keys?limit=0", status: 400, code: "invalid_input", field: "limit"},
		{name: "huge limit", method: "GET", path: "/v1/keys?limit=1001", status: 400, code: "invalid_input", field: "limit"},
		{name: "overflowing limit", method: "GET", path: "/v1/keys?limit=99999999999999999999999", status: 400, code: "invalid_input", field: "limit"},
		{name: "word limit", method: "GET", path: "/v1/keys?limit=ten", status: 400, code: "invalid_input", field: "limit"},
		{name: "bad cursor", method: "GET", path: "/v1/keys?cursor=nope", status: 400, code: "invalid_input", field: "cursor"},
		{name: "bad base64 cursor", method: "GET", path: "/v1/keys?cursor=%21%21", status: 400, code: "invalid_input", field: "cursor"},
		{name: "cursor past year 9999", method: "GET", path: "/v1/keys?cursor=" + cursorAt(math.MaxInt64), status: 400, code: "invalid_input", field: "cursor"},
		{name: "cursor before year 1", method: "GET", path: "/v1/keys?cursor=" + cursorAt(math.MinInt64), status: 400, code: "invalid_input", field: "cursor"},
		{name: "bad state", method: "GET", path: "/v1/keys?state=deleted", status: 400, code: "invalid_input", field: "state"},
		{name: "unknown parameter", method: "GET", path: "/v1/keys?ownr=acme", status: 400, code: "invalid_input", field: "ownr"},
		{name: "repeated parameter", method: "GET", path: "/v1/keys?owner=a&owner=b", status: 400, code: "invalid_input", field: "owner"},
		{name: "NUL in search", method: "GET", path: "/v1/keys?search=a%00b", status: 400, code: "invalid_input", field: "search"},
		{name: "invalid UTF-8 in owner", method: "GET", path: "/v1/keys?owner=%ff", status: 400, code: "invalid_input", field: "owner"},
		{name: "long search", method: "GET", path: "/v1/keys?search=" + strings.Repeat("s", 201), status: 400, code: "invalid_input", field: "search"},
		{name: "bad escape in query", method: "GET", path: "/v1/keys?search=%zz", status: 400, code: "invalid_input", field: "query"},

		// Audit log and usage queries.
		{name: "events bad type", method: "GET", path: "/v1/events?type=key.exploded", status: 400, code: "invalid_input", field: "type"},
		{name: "events bad limit", method: "GET", path: "/v1/events?limit=0", status: 400, code: "invalid_input", field: "limit"},
		{name: "events word limit", method: "GET", path: "/v1/events?limit=many", status: 400, code: "invalid_input", field: "limit"},
		{name: "events bad cursor", method: "GET", path: "/v1/events?cursor=-3", status: 400, code: "invalid_input", field: "cursor"},
		{name: "events bad key_id", method: "GET", path: "/v1/events?key_id=nope", status: 400, code: "invalid_input", field: "key_id"},
		{name: "events unknown parameter", method: "GET", path: "/v1/events?owner=acme", status: 400, code: "invalid_input", field: "owner"},
		{name: "events NUL in actor", method: "GET", path: "/v1/events?actor=a%00", status: 400, code: "invalid_input", field: "actor"},
		{name: "events repeated parameter", method: "GET", path: "/v1/events?type=key.created&type=key.revoked", status: 400, code: "invalid_input", field: "type"},
		{name: "usage bad from", method: "GET", path: item + "/usage?from=yesterday", status: 400, code: "invalid_input", field: "from"},
		{name: "usage bad to", method: "GET", path: item + "/usage?to=2030-01-02", status: 400, code: "invalid_input", field: "to"},
		{name: "usage bad granularity", method: "GET", path: item + "/usage?granularity=week", status: 400, code: "invalid_input", field: "granularity"},
		{name: "usage from after to", method: "GET", path: item + "/usage?from=2030-01-02T00:00:00Z&to=2030-01-01T00:00:00Z", status: 400, code: "invalid_input", field: "from"},
		{name: "usage range too long", method: "GET", path: item + "/usage?from=2029-01-01T00:00:00Z&to=2030-01-01T00:00:00Z", status: 400, code: "invalid_input", field: "to"},
		{name: "usage to past year 9999", method: "GET", path: item + "/usage?to=9999-12-31T23:59:59-23:59", status: 400, code: "invalid_input", field: "to"},
		{name: "usage from past year 9999", method: "GET", path: item + "/usage?from=9999-12-31T23:59:59-23:59&to=9999-12-31T23:59:59Z", status: 400, code: "invalid_input", field: "from"},
		{name: "usage from before year 1", method: "GET", path: item + "/usage?from=0001-01-01T00:00:00%2B01:00&to=0001-01-02T00:00:00Z", status: 400, code: "invalid_input", field: "from"},
		{name: "usage default range before year 1", method: "GET", path: item + "/usage?to=0001-01-01T12:00:00Z", status: 400, code: "invalid_input", field: "to"},
		{name: "usage unknown parameter", method: "GET", path: item + "/usage?step=1m", status: 400, code: "invalid_input", field: "step"},
		{name: "usage unknown id", method: "GET", path: "/v1/keys/AAAAAAAAAAAA/usage", status: 404, code: "not_found"},
		{name: "usage malformed id", method: "GET", path: "/v1/keys/x/usage", status: 404, code: "not_found"},
		{name: "POST usage", method: "POST", path: item + "/usage", status: 405, code: "method_not_allowed"},
		{name: "POST metrics", method: "POST", path: "/metrics", token: "-", status: 405, code: "method_not_allowed"},

		// Routing.
		{name: "PUT on a collection", method: "PUT", path: "/v1/keys", body: `{}`, status: 405, code: "method_not_allowed"},
		{name: "GET verify", method: "GET", path: "/v1/verify", status: 405, code: "method_not_allowed"},
		{name: "POST healthz", method: "POST", path: "/healthz", token: "-", status: 405, code: "method_not_allowed"},
		{name: "DELETE revoke", method: "DELETE", path: item + "/revoke", status: 405, code: "method_not_allowed"},
		{name: "OPTIONS", method: "OPTIONS", path: "/v1/keys", status: 405, code: "method_not_allowed"},
		{name: "unknown method", method: "BREW", path: "/v1/keys", status: 405, code: "method_not_allowed"},
		{name: "root", method: "GET", path: "/", token: "-", status: 404, code: "not_found"},
		{name: "junk path", method: "GET", path: "/wp-admin/install.php", token: "-", status: 404, code: "not_found"},
		{name: "junk under v1", method: "GET", path: "/v1/nope", status: 404, code: "not_found"},
		{name: "too deep", method: "GET", path: item + "/revoke/again", status: 404, code: "not_found"},
		{name: "trailing slash", method: "GET", path: "/v1/keys/", status: 404, code: "not_found"},
		{name: "v2", method: "GET", path: "/v2/keys", status: 404, code: "not_found"},
		{name: "long junk path", method: "GET", path: "/" + strings.Repeat("x", 10_000), token: "-", status: 404, code: "not_found"},

		// Headers.
		{name: "oversized headers", method: "GET", path: "/healthz", token: "-", header: http.Header{"X-Junk": {strings.Repeat("j", 100<<10)}}, status: 431},
		{name: "two different keys", method: "GET", path: "/v1/whoami", header: http.Header{"X-Api-Key": {k.Token}}, status: 400, code: "conflicting_credentials"},
		{name: "non-ASCII key", method: "GET", path: "/v1/whoami", token: "-", header: http.Header{"X-Api-Key": {"ak_\xe9t\xe9"}}, status: 401, code: "invalid_key"},
		{name: "oversized key", method: "GET", path: "/v1/whoami", token: "-", header: http.Header{"X-Api-Key": {strings.Repeat("k", 10_000)}}, status: 401, code: "invalid_key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rq := req{method: tc.method, path: tc.path, body: tc.body, contentType: tc.contentType, header: tc.header}
			switch tc.token {
			case "":
				rq.token = f.admin
			case "verify":
				rq.token = f.verify
			}
			if tc.contentType == "-" {
				rq.contentType = ""
				rq.header = http.Header{"Content-Type": nil}
			}
			r := f.do(t, rq)
			if r.status >= 500 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if tc.code == "" {
				if r.status != tc.status {
					t.Errorf("status %d, want %d", r.status, tc.status)
				}
				return
			}
			p := wantProblem(t, r, tc.status, tc.code, tc.name)
			if p.Field != tc.field {
				t.Errorf("field %q, want %q (%s)", p.Field, tc.field, p.Detail)
			}
			if p.Detail == "" || p.Title == "" || p.Type != "about:blank" {
				t.Errorf("incomplete problem: %s", r.body)
			}
			if strings.Contains(p.Detail, "apikey:") || strings.Contains(p.Detail, "sqlite") || strings.Contains(p.Detail, "postgres") {
				t.Errorf("internal error text in %q", p.Detail)
			}
			if tc.status == http.StatusMethodNotAllowed && r.header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
	// Nothing above stored a key that cannot be listed.
	for _, path := range []string{"/v1/keys?limit=1000", "/v1/events?limit=1000"} {
		mustStatus(t, f.do(t, req{method: "GET", path: path, token: f.admin}), http.StatusOK, path)
	}
	// Nothing above changed the target key.
	r := f.do(t, req{method: "GET", path: item, token: f.admin})
	var got key
	r.json(t, &got)
	if got.Name != "target" || got.ExpiresAt != nil {
		t.Errorf("the target key changed: %s", r.body)
	}
	if allow := f.do(t, req{method: "PUT", path: "/v1/keys", token: f.admin}).header.Get("Allow"); allow != "GET, HEAD, POST" {
		t.Errorf("Allow %q", allow)
	}
}

// cursorAt is a well-formed list cursor at micros microseconds since 1970.
func cursorAt(micros int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(micros, 10) + ".AAAAAAAAAAAA"))
}

// FuzzAPI sends arbitrary methods, paths, content types and bodies
// through the handler with an admin key and fails on any 5xx, and on any
// answer that repeats the admin key.
func FuzzAPI(f *testing.F) {
	fx := newFixture(f, options{})
	target := fx.create2(f)
	seeds := []struct{ method, path, ct, body string }{
		{"POST", "/v1/keys", "application/json", `{"name":"fuzz","owner":"o","scopes":["a:*"],"metadata":{"k":"v"},"expires_in":"1d"}`},
		{"POST", "/v1/keys", "application/json", `{"name":"fuzz","expires_at":"2099-01-01T00:00:00Z"}`},
		{"GET", "/v1/keys?owner=o&state=active&search=f&limit=2", "", ""},
		{"GET", "/v1/keys?cursor=MTcwMDAwMDAwMDAwMDAwMC5BQUFBQUFBQUFBQUE", "", ""},
		{"GET", "/v1/keys/{id}", "", ""},
		{"PATCH", "/v1/keys/{id}", "application/json", `{"name":"n","scopes":[],"metadata":{},"expires_at":null}`},
		{"PATCH", "/v1/keys/{id}", "application/merge-patch+json", `{"expires_in":"2w"}`},
		{"POST", "/v1/keys/{id}/roll", "", ""},
		{"POST", "/v1/keys/{id}/revoke", "", ""},
		{"DELETE", "/v1/keys/{id}", "", ""},
		{"POST", "/v1/verify", "application/json", `{"key":"ak_AAAAAAAAAAAA_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","scopes":["a"]}`},
		{"GET", "/v1/whoami", "", ""},
		{"GET", "/v1/openapi.json", "", ""},
		{"GET", "/healthz", "", ""},
		{"GET", "/readyz", "", ""},
		{"PUT", "/v1/keys", "application/json", `{}`},
		{"POST", "/v1/keys", "application/json", "{\"name\":\"\xff\"}"},
		{"POST", "/v1/keys", "text/plain", `{"name":"x"}`},
		{"POST", "/v1/keys", "application/json", `[[[[[[[[[[]]]]]]]]]]`},
		{"GET", "/v1/keys?limit=-5&state=%00", "", ""},
		{"GET", "/v1/../v1/keys", "", ""},
		{"GET", "//v1//keys", "", ""},
		// Times outside the years 1 to 9999 in UTC, NUL and invalid UTF-8
		// (a black-box campaign found them answered 500 or 503).
		{"POST", "/v1/keys", "application/json", `{"name":"far","expires_at":"9999-12-31T23:59:59-23:59"}`},
		{"POST", "/v1/keys", "application/json", `{"name":"early","expires_at":"0001-01-01T00:00:00+01:00"}`},
		{"PATCH", "/v1/keys/{id}", "application/json", `{"expires_at":"9999-12-31T23:59:59-23:59"}`},
		{"GET", "/v1/keys/{id}/usage?from=9999-12-31T23:00:00Z&to=9999-12-31T23:59:59-23:59", "", ""},
		{"GET", "/v1/keys/{id}/usage?to=0000-01-01T00:00:00Z", "", ""},
		{"GET", "/v1/keys/{id}/usage?to=0001-01-01T12:00:00Z&granularity=minute", "", ""},
		{"GET", "/v1/keys?cursor=" + cursorAt(math.MaxInt64), "", ""},
		{"GET", "/v1/keys?cursor=" + cursorAt(math.MinInt64), "", ""},
		{"GET", "/v1/keys?search=a%00b&owner=%ff", "", ""},
		{"GET", "/v1/events?actor=%00&key_id=%ff", "", ""},
		{"POST", "/v1/keys", "application/json", `{"name":"x","owner":"a\u0000","metadata":{"k":"\u0000"}}`},
		{"POST", "/v1/keys", "application/json", "{\"name\":\"x\",\"owner\":\"\xff\"}"},
		{"POST", "/v1/verify", "application/json", `{"key":"ak_\u0000"}`},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.ct, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, method, path, ct string, body []byte) {
		path = strings.ReplaceAll(path, "{id}", target)
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		r, err := http.NewRequest(method, "http://apikey.test"+path, bytes.NewReader(body))
		if err != nil {
			return // not a request a client can send
		}
		r.Header.Set("Authorization", "Api-Key "+fx.admin)
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		w := httptest.NewRecorder()
		fx.srv.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%q %q (%q, %q): status %d: %s", method, path, ct, body, w.Code, w.Body)
		}
		if strings.Contains(w.Body.String(), fx.admin) {
			t.Fatalf("%q %q: the answer repeats the admin key", method, path)
		}
	})
}

// create2 makes a key for the fuzz target to act on, through the Manager.
func (f *fixture) create2(tb testing.TB) string {
	tb.Helper()
	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/v1/keys", strings.NewReader(`{"name":"fuzz target"}`))
	r.Header.Set("Authorization", "Api-Key "+f.admin)
	r.Header.Set("Content-Type", "application/json")
	f.srv.ServeHTTP(w, r)
	if w.Code != http.StatusCreated {
		tb.Fatalf("create: %d %s", w.Code, w.Body)
	}
	return strings.TrimPrefix(w.Header().Get("Location"), "/v1/keys/")
}
