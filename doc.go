// Package apikey issues, stores and verifies API keys for machine clients:
// servers and third-party backends that call an API without a user account.
//
// # Key format
//
// A key reads <prefix>_<id>_<secret><checksum>, for example
//
//		ak_3fZ9q0LmA1bc_Vd8kq2N1xYp0sT7wLm4RzQe6uJb9Ha3C1x9FQk
//
//	  - prefix: the issuer prefix (default "ak"), 1 to 32 characters of
//	    a-z, 0-9 and _; it may contain _, so tokens are parsed from the right;
//	  - id: 12 base62 characters from crypto/rand, the public key id shown in
//	    lists and logs and used for lookup;
//	  - secret: base62 from crypto/rand, 32 characters by default (about 190
//	    bits), configurable from 22 (131 bits) to 128;
//	  - checksum: 6 base62 characters of CRC-32 over everything before it, so
//	    typos and random strings are rejected without a store access and
//	    secret scanners can recognise keys.
//
// A test key (Environment EnvTest) has "_test" after its prefix,
// ak_test_<id>_<secret><checksum>; a live key has nothing there, so the
// tokens of keys made before environments existed are live tokens.
//
// # What is stored
//
// Stores keep the record and an algorithm-tagged digest of the whole token:
// "hmac-sha256$<version>$<hex>" when a server-side pepper is configured,
// "sha256$<hex>" otherwise. The plaintext is returned once, by
// Manager.Create, and is never stored or logged. Digests are compared in
// constant time. A random secret of this size needs no slow password hash.
//
// # Lifecycle
//
// Manager holds every rule; a Store only persists. Create returns the
// plaintext once. Verify checks shape and checksum, looks the id up,
// compares the digest, then refuses revoked keys (ErrRevoked), expired keys
// (ErrExpired: a key is expired at and after its ExpiresAt instant, or
// unused for longer than its inactivity expiry: ErrInactive, see
// Key.InactiveAt), disabled keys (ErrDisabled: Disable stops a key until
// Enable, unlike Revoke), keys of an environment the Manager does not accept
// (ErrWrongEnvironment) and keys the Usable hook rejects. A key's network
// allowlist (Key.AllowedCIDRs) needs the client's address: Check, Key.Permits
// and apikeyhttp hold it against it (ErrIPNotAllowed). Malformed tokens, unknown ids and wrong secrets
// are indistinguishable (ErrInvalidKey). Revoke is idempotent and can never
// be undone: the stores enforce it in the database as well. A revoked key is
// frozen: Update, Roll, Disable and Enable refuse it with ErrFrozen, which,
// unlike ErrRevoked, says nothing about the caller's own key. A store
// failure is ErrUnavailable and never grants.
//
// Roll replaces a key's secret. With RollOptions.Grace the old secret keeps
// verifying for a grace window that starts, by default, when the new secret
// is first used, bounded by RollOptions.GraceMax from the roll; the key's
// PreviousSecret shows the window and the old secret's last use. Revoking
// ends both secrets at once.
//
// # Several processes
//
// A Manager with a Cache follows the ChangeFeed of its store (every change
// of a key, recorded by the database), evicts what changed, and trusts its
// cache only StaleAfter past its last complete read, so that an instance
// cut off from the store stops answering from its cache within that bound.
// An Invalidator (LISTEN/NOTIFY, Redis) brings changes within milliseconds.
// A strict Revoke or Delete (Config.StrictRevocation, WithStrict) returns
// once every live instance of the InstanceRegistry has applied the change,
// or reports those that did not with a *NotAcknowledgedError.
//
// # Rate limits and credits
//
// A key, and an owner (Owner, shared by its keys), may carry named rate
// limits (RateLimit: the generic cell rate algorithm, counted by a
// Limiter, in process by default) and a balance of usage credits (Credits,
// optionally refilled; the store spends it exactly, with idempotency keys).
// Check verifies a token and applies them, in this order: the key, the
// rate limits, the credits; Enforce applies them to a key Verify returned.
// Refusals are a *LimitError matching ErrRateLimited or ErrUsageExceeded.
// See docs/limits.md.
//
// # Leaked keys
//
// FindTokens finds keys in text (TokenPattern is the same as a regular
// expression, for scanners that need one); Identify tells whose key a
// found token is, whatever its state. ReportLeak handles a key found in
// public (a report of GitHub's secret scanning): it checks the secret,
// applies a LeakPolicy (revoke, or notify only), records the leak with a
// key.leaked audit entry (EventLeaked) and emits it; Leaks lists them.
//
// # Keys imported from DRF API Key
//
// Keys of Django REST Framework API Key keep their form, "<prefix>.<secret>"
// (ParseDRFToken), when imported with NewDRFRecord and Import: they are
// stored under the id DRFKeyID(prefix), which no native key gets, with the
// issuer prefix DRFIssuer, which no native key can have, so that each form
// verifies only for its own keys. Their "sha512$$<hex>" digests verify as
// they are; the Django password hashes of older releases (LegacyHasher)
// verify and are replaced by the current form on the first successful
// verification.
//
// # Quick start
//
//	store, _ := sqlite.Open(ctx, "apikey.db")
//	_ = store.Migrate(ctx)
//	m, _ := apikey.NewManager(store, apikey.Config{})
//	key, token, _ := m.Create(ctx, apikey.CreateParams{Name: "billing backend"})
//	// hand token to the client once; later:
//	k, err := m.Verify(ctx, token)
package apikey
