package apikeyclient_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyclient"
	"github.com/go-apikey/apikey/apikeyhttp"
)

// A Go service protected by a remote apikey service: the client is the
// middleware's Verifier. Its token needs the scope apikey:verify.
func Example() {
	c, err := apikeyclient.New("http://127.0.0.1:8080", os.Getenv("APIKEY_VERIFY_TOKEN"))
	if err != nil {
		log.Fatal(err)
	}
	mw, err := apikeyhttp.New(c, apikeyhttp.Config{})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /reports", mw.Handler(apikeyhttp.RequireScopes("reports:read")(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			k, _ := apikey.FromContext(r.Context())
			fmt.Fprintf(w, "reports of %s\n", k.Owner)
		}))))
	log.Fatal(http.ListenAndServe("127.0.0.1:9090", mux))
}

// Managing keys: the methods mirror those of *apikey.Manager, and problems
// come back as the apikey sentinel errors. The token needs the scope
// apikey:admin.
func ExampleClient_Create() {
	c, err := apikeyclient.New("http://127.0.0.1:8080", os.Getenv("APIKEY_ADMIN_TOKEN"))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	expires := time.Now().Add(90 * 24 * time.Hour)
	k, token, err := c.Create(ctx, apikey.CreateParams{
		Name:      "billing backend",
		Owner:     "acme",
		Scopes:    []string{"billing:*"},
		ExpiresAt: &expires,
	})
	var ve *apikey.ValidationError
	switch {
	case errors.As(err, &ve):
		log.Fatalf("bad %s: %s", ve.Field, ve.Reason)
	case errors.Is(err, apikey.ErrTooManyKeys):
		log.Fatal("acme holds too many keys")
	case err != nil:
		log.Fatal(err)
	}
	fmt.Println("created", k.ID, "- hand over once:", token)

	if _, err := c.Revoke(ctx, k.ID); err != nil {
		log.Fatal(err)
	}
	_, err = c.Verify(ctx, token)
	fmt.Println(errors.Is(err, apikey.ErrRevoked))
}
