package webhook_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/go-apikey/apikey/webhook"
)

// A receiver checks every message before it trusts the body.
func ExampleVerify() {
	// The secret shown once when the endpoint was created.
	secret, err := webhook.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		panic(err)
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "cannot read", http.StatusBadRequest)
			return
		}
		if err := webhook.Verify(r.Header, body, time.Now(), 0, secret); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		// Process the event once per webhook-id, then answer 2xx.
		fmt.Println("verified", r.Header.Get(webhook.HeaderID))
	})

	// What apikey sends (here built by hand with the same package).
	body := []byte(`{"type":"key.created","timestamp":"2026-01-02T03:04:05Z","data":{}}`)
	req := httptest.NewRequest("POST", "/hooks", strings.NewReader(string(body)))
	webhook.SetHeaders(req.Header, "msg_2Lz0example", time.Now(), body, secret)
	handler.ServeHTTP(httptest.NewRecorder(), req)

	// A forged body fails.
	req = httptest.NewRequest("POST", "/hooks", strings.NewReader(`{"type":"key.deleted"}`))
	webhook.SetHeaders(req.Header, "msg_2Lz0example", time.Now(), body, secret)
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	fmt.Println(rec.Code)
	// Output:
	// verified msg_2Lz0example
	// 401
}
