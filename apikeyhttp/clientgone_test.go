package apikeyhttp_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyhttp"
)

// TestClientClosed: a call cancelled because the client went away is
// answered 499 client_closed_request and logged at info, not as a 503
// failure of the service; the same cancellation while the client still
// waits (a timeout of the service's own) stays a 503.
func TestClientClosed(t *testing.T) {
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	timedOut, stopT := context.WithTimeout(context.Background(), 0)
	defer stopT()
	r := httptest.NewRequest("GET", "/", nil)
	for _, tc := range []struct {
		r      *http.Request
		err    error
		status int
		code   apikey.Code
	}{
		{r.WithContext(gone), context.Canceled, 499, apikeyhttp.CodeClientClosed},
		{r.WithContext(gone), errors.Join(apikey.ErrUnavailable, context.Canceled), 499, apikeyhttp.CodeClientClosed},
		{r.WithContext(gone), apikey.ErrInvalidKey, 401, apikey.CodeInvalidKey},
		{r, context.Canceled, 503, apikey.CodeUnavailable},
		{r, context.DeadlineExceeded, 503, apikey.CodeUnavailable},
		{r.WithContext(timedOut), context.DeadlineExceeded, 503, apikey.CodeUnavailable},
	} {
		status, code := apikeyhttp.Status(apikeyhttp.ClientClosed(tc.r, tc.err))
		if status != tc.status || code != tc.code {
			t.Errorf("ClientClosed(%v, gone %v): %d %s, want %d %s", tc.err, tc.r.Context().Err() != nil, status, code, tc.status, tc.code)
		}
	}
	if err := apikeyhttp.ErrorFor(499, apikeyhttp.CodeClientClosed); err != apikeyhttp.ErrClientClosed {
		t.Errorf("ErrorFor(499): %v", err)
	}

	// Through the middleware: a verifier that waits for the request's end.
	v := apikey.VerifierFunc(func(ctx context.Context, _ string) (*apikey.Key, error) {
		<-ctx.Done()
		return nil, errors.Join(apikey.ErrUnavailable, ctx.Err())
	})
	var logs bytes.Buffer
	h := mustNew(t, v, apikeyhttp.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))}).Handler(echo)
	ctx, stop := context.WithCancel(context.Background())
	req := httptest.NewRequest("GET", "/", nil).WithContext(ctx)
	req.Header.Set("Authorization", "Bearer ak_3fZ9q0LmA1bc_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
	stop()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 499 || !strings.Contains(logs.String(), "level=INFO") || strings.Contains(logs.String(), "level=ERROR") ||
		!strings.Contains(logs.String(), "client_closed_request") {
		t.Errorf("a request whose client went away: %d, log %q; want 499 logged at info", w.Code, logs.String())
	}
}
