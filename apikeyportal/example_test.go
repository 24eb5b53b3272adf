package apikeyportal_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyportal"
	"github.com/go-apikey/apikey/memstore"
)

// Mount the portal under /keys/ of a host application whose own login
// tells the portal who the user is.
func Example() {
	ctx := context.Background()
	store := memstore.New() // or sqlite.Open / postgres.Open, then Migrate
	m, err := apikey.NewManager(store, apikey.Config{MaxKeysPerOwner: 5})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close(ctx)

	portal, err := apikeyportal.New(m, apikeyportal.Config{
		// The host application's login; a real one reads its session.
		Owner: func(r *http.Request) (string, error) {
			return r.Header.Get("X-Demo-User"), nil
		},
		AllowedScopes: []string{"reports:read", "reports:write"},
		DefaultScopes: []string{"reports:read"},
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/keys/", http.StripPrefix("/keys", portal))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// Submit the creation form as alice; the client follows the redirect
	// to the page that shows the key once.
	form := url.Values{"name": {"nightly export"}, "expires": {"never"}, "scope": {"reports:read"}}
	req, _ := http.NewRequest("POST", srv.URL+"/keys/new", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Demo-User", "alice")
	client := &http.Client{CheckRedirect: func(r *http.Request, via []*http.Request) error {
		r.Header.Set("X-Demo-User", "alice")
		return nil
	}}
	resp, err := client.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("Cache-Control"))

	page, err := m.List(ctx, apikey.KeyFilter{Owner: "alice"})
	if err != nil {
		log.Fatal(err)
	}
	for _, k := range page.Keys {
		fmt.Println(k.Name, k.Owner, k.Scopes, k.State)
	}
	// Output:
	// 200 no-store
	// nightly export alice [reports:read] active
}
