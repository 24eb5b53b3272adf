package server

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyhttp"
)

// Problem codes of the service, beside those of package apikey
// (invalid_key, key_expired, key_revoked, invalid_input, not_found,
// too_many_keys, unavailable) and of apikeyhttp (missing_key,
// conflicting_credentials, insufficient_scope, forbidden).
const (
	CodeInvalidJSON          apikey.Code = "invalid_json"           // 400: malformed JSON, unknown field, wrong type
	CodeBodyTooLarge         apikey.Code = "body_too_large"         // 413: body over MaxBodyBytes
	CodeUnsupportedMediaType apikey.Code = "unsupported_media_type" // 415: the body is not application/json
	CodeMethodNotAllowed     apikey.Code = "method_not_allowed"     // 405, with Allow
	CodeInternal             apikey.Code = "internal_error"         // 500: a recovered panic
	CodeInvalidSignature     apikey.Code = "invalid_signature"      // 401: a leak report not signed by a configured key
)

// storeDown is the detail of a management call's 503: the store, not key
// verification, is what failed.
const storeDown = "The key store cannot be reached at the moment; retry later."

// writeProblem writes p with apikeyhttp's writer and notes its code for the
// request record.
func writeProblem(w http.ResponseWriter, r *http.Request, p *apikeyhttp.Problem) {
	info(r).code = p.Code
	p.Write(w)
}

// invalidInput answers 400 invalid_input for field.
func invalidInput(w http.ResponseWriter, r *http.Request, field, reason string) {
	fail(w, r, nil, &apikey.ValidationError{Field: field, Reason: reason})
}

// fail answers the error of a management call with the problem
// apikeyhttp.ProblemOf maps it to (a revoked key that cannot be changed,
// apikey.ErrFrozen, is 409 key_revoked; a *apikey.ValidationError names its
// field). Store failures are logged on log (when not nil) and answered 503
// without their text.
func fail(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	err = apikeyhttp.ClientClosed(r, err) // 499, not a failure to log
	p := apikeyhttp.ProblemOf(err)
	var le *apikey.LimiterError
	switch {
	case p.Status == http.StatusServiceUnavailable && errors.As(err, &le):
		// The rate limiter (Redis), not the store, failed: the detail
		// ProblemOf gives names the limit.
		if log != nil {
			log.LogAttrs(r.Context(), slog.LevelError, "apikey: rate limiter failure",
				slog.String("method", sanitize(r.Method, 20)), slog.String("path", logPath(r.URL.Path)),
				slog.String("error", err.Error()))
		}
	case p.Status == http.StatusServiceUnavailable:
		if log != nil {
			log.LogAttrs(r.Context(), slog.LevelError, "apikey: store failure",
				slog.String("method", sanitize(r.Method, 20)), slog.String("path", logPath(r.URL.Path)),
				slog.String("error", err.Error()))
		}
		p.Detail = storeDown
	}
	writeProblem(w, r, p)
}

// fail answers err for a management call.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) { fail(w, r, s.log, err) }

// authError is the ErrorWriter of the middleware: apikeyhttp.WriteError,
// with the code noted for the request record.
func authError(w http.ResponseWriter, r *http.Request, err error) {
	writeProblem(w, r, apikeyhttp.ProblemOf(err))
}

// writeJSON writes v as a JSON answer. Answers of the API are never
// cached: they describe keys, and some carry one.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var (
		body []byte
		err  error
	)
	if k, ok := v.(*apikey.Key); ok && k != nil {
		// The common answer (whoami, get, update, revoke) straight from
		// its encoder, without encoding/json's check and copy of it.
		body, err = k.MarshalJSON()
	} else {
		body, err = json.Marshal(v)
	}
	if err != nil { // cannot happen for the types answered here
		panic(err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
