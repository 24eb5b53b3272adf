package apikeyhttp

import (
	"net/http"
	"slices"

	"github.com/go-apikey/apikey"
)

// RequireScopes returns middleware that lets a request through only if the
// key in its context (put there by a Middleware upstream) grants every one
// of scopes, with the wildcard rules of apikey.Key.HasScope: a granted
// "billing:*" covers "billing:read". A request without a key (Optional mode
// and no credential, or no Middleware upstream) gets 401 missing_key; a key
// that lacks a scope gets 403 insufficient_scope with a *ScopeError naming
// scopes. Refusals go through the ErrorWriter and Logger of the upstream
// Middleware when it has custom ones, else WriteError and slog.Default().
//
// With no scopes it only requires a key. It panics if a scope is empty,
// which is a programming error.
func RequireScopes(scopes ...string) func(http.Handler) http.Handler {
	return requireScopes(scopes, false)
}

// RequireAnyScope is like RequireScopes but lets a request through if the
// key grants at least one of scopes.
func RequireAnyScope(scopes ...string) func(http.Handler) http.Handler {
	return requireScopes(scopes, true)
}

func requireScopes(scopes []string, anyOf bool) func(http.Handler) http.Handler {
	scopes = slices.Clone(scopes)
	for _, s := range scopes {
		if s == "" {
			panic("apikeyhttp: RequireScopes: empty scope")
		}
	}
	se := &ScopeError{Required: scopes, Any: anyOf}
	return func(next http.Handler) http.Handler {
		if next == nil {
			panic("apikeyhttp: RequireScopes needs a handler")
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			k, ok := apikey.FromContext(r.Context())
			if !ok {
				refuse(w, r, ErrMissingKey, "")
				return
			}
			if !covers(k, scopes, anyOf) {
				refuse(w, r, &ScopeError{Required: slices.Clone(se.Required), Any: se.Any}, k.ID)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func covers(k *apikey.Key, scopes []string, anyOf bool) bool {
	if len(scopes) == 0 {
		return true
	}
	for _, s := range scopes {
		if k.HasScope(s) == anyOf {
			return anyOf
		}
	}
	return !anyOf
}

// refuse writes a refusal from RequireScopes with the settings of the
// Middleware that rode along in the context, or the defaults.
func refuse(w http.ResponseWriter, r *http.Request, err error, keyID string) {
	m := fromContext(r.Context())
	if m == nil {
		status, code := Status(err)
		(*Middleware)(nil).logRefusal(r, status, code, "", keyID, "", err)
		WriteError(w, r, err)
		return
	}
	m.denyKey(w, r, err, "", keyID, "")
}
