package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-apikey/apikey"
)

// cookieName is the session cookie. Its value is 32 random bytes in
// unpadded base64url (43 characters).
const cookieName = "apikey_admin_session"

// touchEvery is how stale a session's last activity may get before a
// request writes it again; it bounds writes to one per minute per session
// and makes the idle timeout accurate to it.
const touchEvery = time.Minute

// session is a signed-in admin.
type session struct {
	email  string
	idHash string
	// role and twoFactor come from the account store (RoleAdmin and
	// false without one).
	role      string
	twoFactor bool
}

// sessionKey carries the *session of a request to render.
type sessionKey struct{}

func newToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// hashToken returns the hex SHA-256 of a session token: what the store
// keeps.
func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func validToken(s string) bool {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil && len(b) == 32
}

// current returns the session of r, or nil when there is none or it has
// ended (in which case it is deleted). expired reports that r carried a
// session cookie that is no longer valid.
func (h *handler) current(r *http.Request) (s *session, expired bool, err error) {
	c, err := r.Cookie(cookieName)
	if err != nil || !validToken(c.Value) {
		return nil, err == nil, nil
	}
	ctx := r.Context()
	idHash := hashToken(c.Value)
	email, created, lastSeen, expires, err := h.store.Session(ctx, idHash)
	if errors.Is(err, apikey.ErrNotFound) {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, err
	}
	now := h.now()
	if !now.Before(expires) || now.Sub(created) >= h.absolute || now.Sub(lastSeen) >= h.idle {
		if err := h.store.DeleteSession(ctx, idHash); err != nil {
			return nil, false, err
		}
		return nil, true, nil
	}
	if now.Sub(lastSeen) >= touchEvery {
		if err := h.store.TouchSession(ctx, idHash, now); err != nil && !errors.Is(err, apikey.ErrNotFound) {
			return nil, false, err
		}
	}
	s = &session{email: email, idHash: idHash, role: RoleAdmin}
	if h.acct != nil {
		u, err := h.acct.User(ctx, email)
		if errors.Is(err, apikey.ErrNotFound) || err == nil && u.DisabledAt != nil {
			// Deleted or disabled since the login: the session ends now.
			if err := h.store.DeleteSession(ctx, idHash); err != nil {
				return nil, false, err
			}
			return nil, true, nil
		}
		if err != nil {
			return nil, false, err
		}
		s.role, s.twoFactor = u.Role, u.TwoFactor
	}
	return s, false, nil
}

// authed wraps a page that needs a signed-in admin: without one, the
// browser is sent to the login page, which returns it here afterwards.
func (h *handler) authed(next func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, expired, err := h.current(r)
		if err != nil {
			h.fail(w, r, nil, err)
			return
		}
		if s == nil {
			q := url.Values{}
			if r.Method == http.MethodGet {
				q.Set("next", r.URL.RequestURI())
			}
			if expired {
				h.clearCookie(w, r)
				q.Set("expired", "1")
			}
			target := "/admin/login"
			if len(q) > 0 {
				target += "?" + q.Encode()
			}
			http.Redirect(w, r, target, http.StatusSeeOther)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), sessionKey{}, s))
		own := strings.HasPrefix(r.URL.Path, "/admin/account") || r.URL.Path == "/admin/logout"
		if h.require2 && !s.twoFactor && !own {
			http.Redirect(w, r, "/admin/account?two_factor=required", http.StatusSeeOther)
			return
		}
		if s.role == RoleViewer && r.Method != http.MethodGet && r.Method != http.MethodHead && !own {
			h.errorPage(w, r, s, http.StatusForbidden, "Read-only account",
				"Your account can see every page but change nothing. Ask an administrator to make the change.")
			return
		}
		next(w, r, s)
	}
}

func (h *handler) secureCookie(r *http.Request) bool {
	switch h.secure {
	case SecureAlways:
		return true
	case SecureNever:
		return false
	}
	return r.TLS != nil
}

func (h *handler) setCookie(w http.ResponseWriter, r *http.Request, token string) {
	http.SetCookie(w, &http.Cookie{
		Name:     cookieName,
		Value:    token,
		Path:     Path,
		MaxAge:   int(h.absolute / time.Second),
		HttpOnly: true,
		Secure:   h.secureCookie(r),
		SameSite: http.SameSiteLaxMode,
	})
}

func (h *handler) clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: "", Path: Path, MaxAge: -1,
		HttpOnly: true, Secure: h.secureCookie(r), SameSite: http.SameSiteLaxMode,
	})
}

type loginData struct {
	Email    string
	Next     string
	Error    string
	NeedCode bool // the two-factor code was missing or wrong
}

func (h *handler) loginForm(w http.ResponseWriter, r *http.Request) {
	s, _, err := h.current(r)
	if err != nil {
		h.fail(w, r, nil, err)
		return
	}
	next := localPath(r.URL.Query().Get("next"))
	if s != nil {
		http.Redirect(w, r, cmpOr(next, "/admin/keys"), http.StatusSeeOther)
		return
	}
	v := view{Title: "Sign in", Data: loginData{Next: next}}
	switch {
	case r.URL.Query().Get("expired") == "1":
		v.Notice = "Your session has ended. Please sign in again."
	case r.URL.Query().Get("out") == "1":
		v.Notice = "You have signed out."
	}
	h.render(w, r, http.StatusOK, "login", v)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// invalidLogin is the one message for an unknown email and a wrong
// password alike.
const invalidLogin = "Invalid email or password."

// Bounds of the login form: longer input cannot be an account's.
const (
	maxEmail    = 320
	maxPassword = 1024
)

// truncate cuts s to at most n bytes.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func (h *handler) login(w http.ResponseWriter, r *http.Request) {
	raw := strings.TrimSpace(r.PostFormValue("email"))
	email := strings.ToLower(raw) // which turns invalid UTF-8 into U+FFFD: check raw
	password := r.PostFormValue("password")
	data := loginData{Email: email, Next: localPath(r.PostFormValue("next"))}
	if email == "" || password == "" {
		data.Error = "Enter your email and password."
		h.render(w, r, http.StatusBadRequest, "login", view{Title: "Sign in", Data: data})
		return
	}
	// Input no account can have (too long, not text) fails like a wrong
	// password, without reaching the store, and counts like one.
	badEmail := len(raw) > maxEmail || !apikey.ValidText(raw)
	malformed := badEmail || len(password) > maxPassword
	if badEmail { // quoted for the logs and the throttle's key, and not shown back
		email = strconv.Quote(truncate(raw, maxEmail))
		data.Email = ""
	}
	now := h.now()
	addr := h.addrOf(r)
	// The account is throttled per client address: failures from one
	// address never refuse the right password from another.
	accountKey := "account:" + strconv.Itoa(len(email)) + ":" + email + "@address:" + addr
	addrKey := "address:" + addr
	// The attempt is counted before the password is checked, in the same
	// step as the limit, so concurrent guesses cannot all slip under it; a
	// successful login takes it back.
	// An operator's unlock (AccountStore.Unlock) is read from the
	// database, where every server sees it: the account's failures before
	// it no longer count. The per-address limit stays.
	var unlocked time.Time
	if h.acct != nil && !badEmail {
		u, err := h.acct.User(r.Context(), email)
		switch {
		case err == nil && u.UnlockedAt != nil:
			unlocked = *u.UnlockedAt
		case err != nil && !errors.Is(err, apikey.ErrNotFound):
			h.fail(w, r, nil, err)
			return
		}
	}
	wait := h.throttle.attempt(now, accountKey, h.accounts, addrKey, h.addrs, unlocked)
	if wait > 0 {
		h.log.Warn("admin: login throttled", "email", email, "address", addr)
		secs := int((wait + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		data.Error = "Too many failed sign-in attempts. Try again in " + humanWait(wait) + "."
		h.render(w, r, http.StatusTooManyRequests, "login", view{Title: "Sign in", Data: data})
		return
	}
	if malformed {
		h.log.Warn("admin: failed login with malformed input", "email", email, "address", addr)
		data.Error = invalidLogin
		h.render(w, r, http.StatusBadRequest, "login", view{Title: "Sign in", Data: data})
		return
	}
	ok, err := h.checkLogin(r.Context(), email, password)
	if err != nil {
		h.throttle.forget(addrKey, now)
		h.throttle.forget(accountKey, now)
		h.fail(w, r, nil, err)
		return
	}
	if !ok {
		h.log.Warn("admin: failed login", "email", email, "address", addr)
		data.Error = invalidLogin
		h.render(w, r, http.StatusOK, "login", view{Title: "Sign in", Data: data})
		return
	}
	if h.acct != nil {
		// The password was right: the account's state and its second
		// factor may be told. A wrong code counts as a failed login.
		u, err := h.acct.User(r.Context(), email)
		if err != nil {
			h.throttle.forget(addrKey, now)
			h.throttle.forget(accountKey, now)
			h.fail(w, r, nil, err)
			return
		}
		if u.DisabledAt != nil {
			h.log.Warn("admin: login of a disabled account", "email", email, "address", addr)
			data.Error = "This account is disabled. Ask an administrator to enable it."
			h.render(w, r, http.StatusForbidden, "login", view{Title: "Sign in", Data: data})
			return
		}
		if u.TOTPSecret != "" && !CheckTOTP(u.TOTPSecret, r.PostFormValue("code"), now) {
			h.log.Warn("admin: failed two-factor code", "email", email, "address", addr)
			data.Error = "Enter the current 6-digit code from your authenticator app."
			data.NeedCode = true
			h.render(w, r, http.StatusOK, "login", view{Title: "Sign in", Data: data})
			return
		}
	}
	h.throttle.reset(accountKey)
	h.throttle.forget(addrKey, now)
	ctx := r.Context()
	// Rotation: whatever session the browser had is ended, and the new one
	// gets a fresh token.
	if c, err := r.Cookie(cookieName); err == nil && validToken(c.Value) {
		old := hashToken(c.Value)
		h.reveals.drop(old)
		if err := h.store.DeleteSession(ctx, old); err != nil {
			h.fail(w, r, nil, err)
			return
		}
	}
	token, err := newToken()
	if err != nil {
		h.fail(w, r, nil, err)
		return
	}
	if err := h.store.CreateSession(ctx, hashToken(token), email, now, now.Add(h.absolute)); err != nil {
		h.fail(w, r, nil, err)
		return
	}
	if err := h.store.DeleteExpiredSessions(ctx, now, now.Add(-h.idle)); err != nil {
		h.log.Warn("admin: cleaning up expired sessions", "err", err)
	}
	h.setCookie(w, r, token)
	http.Redirect(w, r, cmpOr(data.Next, "/admin/keys"), http.StatusSeeOther)
}

// checkLogin reports whether password is the one of email. For an unknown
// email it still spends the time of one hash.
func (h *handler) checkLogin(ctx context.Context, email, password string) (bool, error) {
	hash, err := h.store.PasswordHash(ctx, email)
	unknown := errors.Is(err, apikey.ErrNotFound)
	if err != nil && !unknown {
		return false, err
	}
	if unknown {
		h.dummyOnce.Do(func() {
			h.dummyHash, _ = HashPassword("not the password of anyone", h.params)
		})
		hash = h.dummyHash
	}
	select {
	case h.hashing <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	ok := CheckPassword(hash, password)
	<-h.hashing
	return ok && !unknown, nil
}

func (h *handler) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(cookieName); err == nil && validToken(c.Value) {
		idHash := hashToken(c.Value)
		h.reveals.drop(idHash)
		if err := h.store.DeleteSession(r.Context(), idHash); err != nil {
			h.fail(w, r, nil, err)
			return
		}
	}
	h.clearCookie(w, r)
	http.Redirect(w, r, "/admin/login?out=1", http.StatusSeeOther)
}

func humanWait(d time.Duration) string {
	if d <= time.Minute {
		return "a minute"
	}
	n := int((d + time.Minute - 1) / time.Minute)
	return strconv.Itoa(n) + " minutes"
}

// throttle counts failures per key in a sliding window. It keeps only
// recent failures, so its memory is bounded by the failure rate.
type throttle struct {
	mu     sync.Mutex
	window time.Duration
	fails  map[string][]time.Time
	ops    int
}

func newThrottle(window time.Duration) *throttle {
	return &throttle{window: window, fails: map[string][]time.Time{}}
}

// recent returns the failures of key within the window, pruning older ones.
// t.mu must be held.
func (t *throttle) recent(key string, now time.Time) []time.Time {
	fs := t.fails[key]
	i := 0
	for i < len(fs) && now.Sub(fs[i]) >= t.window {
		i++
	}
	fs = fs[i:]
	if len(fs) == 0 {
		delete(t.fails, key)
		return nil
	}
	t.fails[key] = fs
	return fs
}

// attempt counts one attempt, at now, against accountKey and addrKey,
// unless either has reached its limit within the window: then it counts
// nothing and returns how long to wait. Check and count are one step.
// Failures of accountKey at or before unlocked (when not zero) are dropped: the
// account was unlocked by an operator since.
func (t *throttle) attempt(now time.Time, accountKey string, accountLimit int, addrKey string, addrLimit int, unlocked time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if fs := t.fails[accountKey]; !unlocked.IsZero() && len(fs) > 0 {
		i := 0
		for i < len(fs) && !fs[i].After(unlocked) {
			i++
		}
		if i == len(fs) {
			delete(t.fails, accountKey)
		} else {
			t.fails[accountKey] = fs[i:]
		}
	}
	var wait time.Duration
	for _, k := range []struct {
		key   string
		limit int
	}{{accountKey, accountLimit}, {addrKey, addrLimit}} {
		if fs := t.recent(k.key, now); len(fs) >= k.limit {
			wait = max(wait, fs[len(fs)-k.limit].Add(t.window).Sub(now))
		}
	}
	if wait > 0 {
		return wait
	}
	t.failLocked(accountKey, now)
	t.failLocked(addrKey, now)
	return 0
}

// forget takes back one attempt of key counted at at.
func (t *throttle) forget(key string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fs := t.fails[key]
	for i := len(fs) - 1; i >= 0; i-- {
		if fs[i].Equal(at) {
			t.fails[key] = append(fs[:i:i], fs[i+1:]...)
			return
		}
	}
}

func (t *throttle) failLocked(key string, now time.Time) {
	t.fails[key] = append(t.recent(key, now), now)
	if t.ops++; t.ops >= 1000 {
		t.ops = 0
		for k := range t.fails {
			t.recent(k, now)
		}
	}
}

func (t *throttle) reset(key string) {
	t.mu.Lock()
	delete(t.fails, key)
	t.mu.Unlock()
}

// revealTTL is how long a new key waits to be shown once.
const revealTTL = 10 * time.Minute

// revealed is a plaintext key waiting for its one showing.
type revealed struct {
	keyID, name, token string
	rolled             bool
	at                 time.Time
}

// reveals holds, per session, the one key waiting to be shown. A key is
// taken out when shown, replaced by the next one, and forgotten after
// revealTTL.
type reveals struct {
	mu sync.Mutex
	m  map[string]revealed
}

func newReveals() *reveals { return &reveals{m: map[string]revealed{}} }

func (rv *reveals) put(idHash string, k revealed) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	for s, v := range rv.m {
		if k.at.Sub(v.at) > revealTTL {
			delete(rv.m, s)
		}
	}
	rv.m[idHash] = k
}

// take returns and forgets the key waiting for session idHash if it is
// keyID's.
func (rv *reveals) take(idHash, keyID string, now time.Time) (revealed, bool) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	k, ok := rv.m[idHash]
	if !ok || k.keyID != keyID {
		return revealed{}, false
	}
	delete(rv.m, idHash)
	if now.Sub(k.at) > revealTTL {
		return revealed{}, false
	}
	return k, true
}

func (rv *reveals) drop(idHash string) {
	rv.mu.Lock()
	delete(rv.m, idHash)
	rv.mu.Unlock()
}
