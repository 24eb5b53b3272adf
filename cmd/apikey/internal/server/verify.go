package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyhttp"
)

type verifyRequest struct {
	// Key is the token to check. Required; any string is checked.
	Key *string `json:"key"`
	// Scopes, when set, must all be granted by the key.
	Scopes []string `json:"scopes"`
	// RateLimit names the limit of the key (and its owner) to count the
	// request against, besides "requests", which always counts.
	RateLimit string `json:"ratelimit"`
	// Cost is the weight of the request against RateLimit; zero means 1.
	Cost int64 `json:"cost"`
	// Credits is the cost of the request in credits; zero spends none.
	Credits int64 `json:"credits"`
	// IdempotencyKey makes the spend of Credits idempotent.
	IdempotencyKey string `json:"idempotency_key"`
	// Environment, when set, is the only environment accepted.
	Environment string `json:"environment"`
	// ClientIP is the address the key was presented from, for the key's
	// network allowlist; a key with one is refused without it, unless
	// DeferAllowlist is set.
	ClientIP *string `json:"client_ip"`
	// DeferAllowlist leaves the key's network allowlist to the caller,
	// which gets it in the key's allowed_cidrs: apikeyclient's Verify sets
	// it, under apikeyhttp, which checks the allowlist against the
	// request's address itself. It cannot be combined with ClientIP.
	DeferAllowlist bool `json:"defer_allowlist"`
}

// verifyResponse is the answer of POST /v1/verify. Key, RateLimits and
// Credits are set only when Valid is.
type verifyResponse struct {
	Valid      bool                  `json:"valid"`
	Code       apikey.Code           `json:"code"`
	Key        *apikey.Key           `json:"key"`
	RateLimits []apikey.LimitResult  `json:"ratelimits"`
	Credits    *apikey.CreditsResult `json:"credits,omitempty"`
}

// maxVerifyScopes bounds the scopes a verify request may require.
const maxVerifyScopes = 100

// verify serves POST /v1/verify: 200 with the outcome for every
// well-formed request, 429 when a valid key is refused by a rate limit or
// lacks the credits, 503 when the store (or the limiter) cannot decide.
func (s *Server) verify(w http.ResponseWriter, r *http.Request) {
	var req verifyRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Key == nil {
		invalidInput(w, r, "key", "is required")
		return
	}
	if len(req.Scopes) > maxVerifyScopes {
		invalidInput(w, r, "scopes", "at most "+strconv.Itoa(maxVerifyScopes)+" scopes")
		return
	}
	for _, sc := range req.Scopes {
		if !apikey.ValidScope(sc) {
			invalidInput(w, r, "scopes", strconv.Quote(sanitize(sc, 100))+" is not a valid scope")
			return
		}
	}
	opts := apikey.CheckOptions{RateLimit: req.RateLimit, Cost: req.Cost, Credits: req.Credits, IdempotencyKey: req.IdempotencyKey}
	switch {
	case opts.RateLimit != "" && !apikey.ValidLimitName(opts.RateLimit):
		invalidInput(w, r, "ratelimit", strconv.Quote(sanitize(opts.RateLimit, 100))+" is not a valid limit name")
		return
	case opts.Cost < 0:
		invalidInput(w, r, "cost", "must not be negative")
		return
	case opts.Credits < 0:
		invalidInput(w, r, "credits", "must not be negative")
		return
	case opts.IdempotencyKey != "" && !apikey.ValidIdempotencyKey(opts.IdempotencyKey):
		invalidInput(w, r, "idempotency_key", "must be 1 to 255 bytes of printable ASCII")
		return
	case req.Environment != "" && !apikey.Environment(req.Environment).Valid():
		invalidInput(w, r, "environment", "must be live or test, got "+strconv.Quote(sanitize(req.Environment, 20)))
		return
	}
	var addr netip.Addr
	if req.ClientIP != nil && req.DeferAllowlist {
		invalidInput(w, r, "defer_allowlist", "cannot be combined with client_ip")
		return
	}
	if req.ClientIP != nil {
		a, err := netip.ParseAddr(*req.ClientIP)
		if err != nil || a.Zone() != "" {
			invalidInput(w, r, "client_ip", strconv.Quote(sanitize(*req.ClientIP, 60))+" is not an IP address (IPv4 or IPv6, without a port or zone)")
			return
		}
		addr = a
	}
	k, err := s.v.Verify(r.Context(), *req.Key)
	resp := verifyResponse{}
	switch code := apikey.CodeOf(err); code {
	case apikey.CodeValid:
		// The environment and the allowlist first: a key refused by
		// them learns nothing about its scopes and spends nothing.
		err := k.Permits(apikey.Environment(req.Environment), addr)
		if req.DeferAllowlist && errors.Is(err, apikey.ErrIPNotAllowed) {
			err = nil // the caller checks allowed_cidrs itself
		}
		if err != nil {
			resp.Code = apikey.CodeOf(err)
			break
		}
		resp.Valid, resp.Key = true, k
		for _, sc := range req.Scopes {
			if !k.HasScope(sc) {
				resp = verifyResponse{Code: apikeyhttp.CodeInsufficientScope}
				break
			}
		}
		if !resp.Valid {
			break
		}
		// The limits and credits of the key, after its scopes: a request
		// that the scopes refuse spends nothing.
		res, err := s.m.Enforce(r.Context(), k, opts)
		if err != nil {
			s.limitFail(w, r, err)
			return
		}
		resp.RateLimits, resp.Credits = res.RateLimits, res.Credits
		apikeyhttp.SetRateLimitHeaders(w.Header(), res.RateLimits)
		if resp.RateLimits == nil {
			resp.RateLimits = []apikey.LimitResult{}
		}
	case apikey.CodeInvalidKey, apikey.CodeKeyExpired, apikey.CodeKeyRevoked, apikey.CodeKeyDisabled, apikey.CodeWrongEnvironment:
		resp.Code = code
	default: // unavailable, or not a decision: never a grant
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// whoami serves GET /v1/whoami: the record of the calling key.
func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	k, ok := apikey.FromContext(r.Context())
	if !ok { // the middleware guarantees a key
		authError(w, r, apikeyhttp.ErrMissingKey)
		return
	}
	writeJSON(w, http.StatusOK, k)
}

type status struct {
	Status string `json:"status"`
}

// healthz serves GET /healthz: the process answers.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, status{"ok"})
}

// readyz serves GET /readyz: the store answers.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.pinger != nil {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := s.pinger.Ping(ctx); err != nil {
			s.log.LogAttrs(r.Context(), slog.LevelError, "apikey: store not ready", slog.String("error", err.Error()))
			writeProblem(w, r, &apikeyhttp.Problem{Status: http.StatusServiceUnavailable, Code: apikey.CodeUnavailable,
				Detail: "The key store cannot be reached."})
			return
		}
	}
	writeJSON(w, http.StatusOK, status{"ready"})
}
