package server

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyhttp"
)

// Problem codes of the service, beside those of apikeyhttp (missing_key,
// invalid_key, key_expired, key_revoked, conflicting_credentials,
// insufficient_scope, invalid_input, not_found, too_many_keys, unavailable).
const (
	CodeInvalidJSON          = "invalid_json"           // 400: malformed JSON, unknown field, wrong type
	CodeBodyTooLarge         = "body_too_large"         // 413: body over MaxBodyBytes
	CodeUnsupportedMediaType = "unsupported_media_type" // 415: the body is not application/json
	CodeMethodNotAllowed     = "method_not_allowed"     // 405, with Allow
	CodeInternal             = "internal_error"         // 500: a recovered panic
)

// problem is apikeyhttp.Problem with the members of bad-input answers.
type problem struct {
	apikeyhttp.Problem
	// Field names the offending field of the body or query.
	Field string `json:"field,omitempty"`
	// Offset is the byte offset of a JSON syntax error.
	Offset *int64 `json:"offset,omitempty"`
}

// details are the fixed sentences of the codes that carry no more.
var details = map[string]string{
	apikeyhttp.CodeNotFound:    "The key does not exist.",
	apikeyhttp.CodeTooManyKeys: "The owner already holds the maximum number of keys.",
	apikeyhttp.CodeUnavailable: "The key store cannot be reached at the moment; retry later.",
	apikeyhttp.CodeKeyRevoked:  "The key has been revoked; a revoked key cannot be changed or rolled.",
}

// retryAfter is the Retry-After of 503 answers, in seconds.
const retryAfter = "5"

// writeProblem writes p as application/problem+json, the way
// apikeyhttp.WriteProblem does, and notes its code for the request record.
func writeProblem(w http.ResponseWriter, r *http.Request, p *problem) {
	if p.Type == "" {
		p.Type = "about:blank"
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	if p.Detail == "" {
		p.Detail = details[p.Code]
	}
	info(r).code = p.Code
	body, err := json.Marshal(p)
	if err != nil { // cannot happen for this struct
		body = []byte(`{"type":"about:blank","status":500,"code":"internal_error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	if p.Status == http.StatusServiceUnavailable && h.Get("Retry-After") == "" {
		h.Set("Retry-After", retryAfter)
	}
	w.WriteHeader(p.Status)
	_, _ = w.Write(append(body, '\n'))
}

// invalidInput answers 400 invalid_input for field.
func invalidInput(w http.ResponseWriter, r *http.Request, field, reason string) {
	fail(w, r, nil, &apikey.ValidationError{Field: field, Reason: reason})
}

// fail is the one mapping from the errors of a management call to
// problems. It defers to apikeyhttp.Status (a revoked key that cannot be
// changed, apikey.ErrFrozen, is 409 key_revoked), and a
// *apikey.ValidationError names its field. Store failures are logged on
// log (when not nil) and answered 503 without their text.
func fail(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var ve *apikey.ValidationError
	p := &problem{}
	switch status, code := apikeyhttp.Status(err); {
	case status == http.StatusServiceUnavailable:
		if log != nil {
			log.LogAttrs(r.Context(), slog.LevelError, "apikey: store failure",
				slog.String("method", sanitize(r.Method, 20)), slog.String("path", logPath(r.URL.Path)),
				slog.String("error", err.Error()))
		}
		p.Status, p.Code = status, code
	case errors.As(err, &ve):
		p.Status, p.Code, p.Field = http.StatusBadRequest, apikeyhttp.CodeInvalidInput, ve.Field
		p.Detail = "Invalid " + ve.Field + ": " + ve.Reason + "."
	default:
		p.Status, p.Code = status, code
	}
	writeProblem(w, r, p)
}

// fail answers err for a management call.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) { fail(w, r, s.log, err) }

// authError is the ErrorWriter of the middleware: apikeyhttp.WriteError,
// with the code noted for the request record.
func authError(w http.ResponseWriter, r *http.Request, err error) {
	_, code := apikeyhttp.Status(err)
	info(r).code = code
	apikeyhttp.WriteError(w, r, err)
}

// writeJSON writes v as a JSON answer. Answers of the API are never
// cached: they describe keys, and some carry one.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
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
