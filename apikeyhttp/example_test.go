package apikeyhttp_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyhttp"
)

// exampleVerifier stands in for an *apikey.Manager: it knows one key.
var exampleVerifier = apikey.VerifierFunc(func(_ context.Context, token string) (*apikey.Key, error) {
	if token == "ak_example" {
		return &apikey.Key{ID: "3fZ9q0LmA1bc", Owner: "acme", Scopes: []string{"billing:*"}}, nil
	}
	return nil, apikey.ErrInvalidKey
})

func get(h http.Handler, path string, header ...string) {
	r := httptest.NewRequest("GET", path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	body, _ := io.ReadAll(w.Body)
	fmt.Printf("%d %s", w.Code, body)
}

// A plain http.ServeMux: the middleware wraps each protected route, and
// handlers read the verified key from the context. Routers built on
// net/http, such as chi, take mw.Handler as is: r.Use(mw.Handler).
func Example() {
	mw, err := apikeyhttp.New(exampleVerifier, apikeyhttp.Config{})
	if err != nil {
		log.Fatal(err)
	}
	whoami := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, _ := apikey.FromContext(r.Context())
		fmt.Fprintf(w, "key %s of %s\n", k.ID, k.Owner)
	})

	mux := http.NewServeMux()
	mux.Handle("GET /whoami", mw.Handler(whoami))

	get(mux, "/whoami", "Authorization", "Api-Key ak_example")
	get(mux, "/whoami", "X-Api-Key", "ak_example")
	get(mux, "/whoami")
	get(mux, "/whoami", "Authorization", "Bearer ak_wrong")
	// Output:
	// 200 key 3fZ9q0LmA1bc of acme
	// 200 key 3fZ9q0LmA1bc of acme
	// 401 {"type":"about:blank","title":"Unauthorized","status":401,"detail":"The request carries no API key.","code":"missing_key"}
	// 401 {"type":"about:blank","title":"Unauthorized","status":401,"detail":"The API key is not valid.","code":"invalid_key"}
}

// RequireScopes guards single routes; a granted "billing:*" covers
// "billing:read".
func ExampleRequireScopes() {
	mw, err := apikeyhttp.New(exampleVerifier, apikeyhttp.Config{})
	if err != nil {
		log.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })

	mux := http.NewServeMux()
	mux.Handle("GET /invoices", mw.Handler(apikeyhttp.RequireScopes("billing:read")(ok)))
	mux.Handle("GET /users", mw.Handler(apikeyhttp.RequireScopes("users:read")(ok)))

	get(mux, "/invoices", "X-Api-Key", "ak_example")
	get(mux, "/users", "X-Api-Key", "ak_example")
	// Output:
	// 200 ok
	// 403 {"type":"about:blank","title":"Forbidden","status":403,"detail":"The API key needs the scope users:read.","code":"insufficient_scope","required_scopes":["users:read"]}
}

// In Optional mode a request without any key reaches the handler, which
// may then accept another kind of authentication.
func ExampleConfig_optional() {
	mw, err := apikeyhttp.New(exampleVerifier, apikeyhttp.Config{Optional: true})
	if err != nil {
		log.Fatal(err)
	}
	h := mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if k, ok := apikey.FromContext(r.Context()); ok {
			fmt.Fprintln(w, "api key", k.ID)
			return
		}
		// Check the session cookie here.
		fmt.Fprintln(w, "no api key: try the session")
	}))
	get(h, "/", "X-Api-Key", "ak_example")
	get(h, "/")
	// Output:
	// 200 api key 3fZ9q0LmA1bc
	// 200 no api key: try the session
}

// The Authorize hook adds rules of your own, here: the key's owner must be
// the organisation named in the path.
func ExampleConfig_authorize() {
	mw, err := apikeyhttp.New(exampleVerifier, apikeyhttp.Config{
		Authorize: func(r *http.Request, k *apikey.Key) error {
			if r.PathValue("org") != k.Owner {
				return fmt.Errorf("key owner %q is not %q", k.Owner, r.PathValue("org"))
			}
			return nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /orgs/{org}/invoices", mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "invoices of", r.PathValue("org"))
	})))
	get(mux, "/orgs/acme/invoices", "X-Api-Key", "ak_example")
	get(mux, "/orgs/globex/invoices", "X-Api-Key", "ak_example")
	// Output:
	// 200 invoices of acme
	// 403 {"type":"about:blank","title":"Forbidden","status":403,"detail":"The API key is not allowed to make this request.","code":"forbidden"}
}

func ExampleStatus() {
	for _, err := range []error{apikey.ErrRevoked, apikey.ErrUnavailable, apikeyhttp.ErrConflictingCredentials} {
		fmt.Println(apikeyhttp.Status(err))
	}
	// Output:
	// 401 key_revoked
	// 503 unavailable
	// 400 conflicting_credentials
}
