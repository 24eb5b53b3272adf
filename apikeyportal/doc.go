// Package apikeyportal is a self-service web portal in which the users of a
// host application manage their own API keys: list them, create one (and
// see its secret once), and revoke one.
//
// The portal is an http.Handler built by New. It has no login of its own:
// Config.Owner asks the host application who the current user is, and that
// answer is the apikey owner of every key the user sees or creates. Mount
// the handler under any prefix with http.StripPrefix; every link and
// redirect it produces is relative, so it works wherever it is mounted:
//
//	portal, err := apikeyportal.New(manager, apikeyportal.Config{
//		Owner:    func(r *http.Request) (string, error) { return currentUser(r), nil },
//		LoginURL: "/login",
//	})
//	...
//	mux.Handle("/keys/", http.StripPrefix("/keys", portal))
//
// # Pages
//
// Relative to the mount point:
//
//	GET  /               the owner's keys, newest first, with their state
//	GET  /new            the creation form (name, expiry, scopes)
//	POST /new            create, then 303 to /{id}/created
//	GET  /{id}/created   the new key's secret, shown once
//	GET  /{id}           one key
//	GET  /{id}/revoke    the revocation confirmation
//	POST /{id}/revoke    revoke, then 303 to /
//
// The pages work without JavaScript; a small script only adds a copy button
// to the page that shows a secret.
//
// # Security
//
// An owner only ever reaches keys whose Owner is exactly the string
// Config.Owner returned. Every page that takes a key id loads the key and
// compares its owner; another owner's id gets the same 404 page as an
// unknown id, so the portal never reveals that a key exists. Ids are read
// from the URL path only, never from form fields, and the owner of a new
// key is never read from the form.
//
// The secret of a new key is shown once. The POST that creates it holds the
// plaintext in memory, keyed to the owner and the key id, and redirects; the
// first GET of /{id}/created takes it out of memory and shows it. Reloading
// that page, going back to it or opening it in another tab shows that the
// secret can no longer be displayed. A secret that nobody fetches is
// forgotten after RevealTTL. Because this state is in the process's memory,
// a deployment with several instances behind a load balancer must route the
// redirect to the instance that served the POST (sticky sessions), or the
// user sees "no longer available" and must revoke the key and create
// another.
//
// Limits on the number of keys per owner are the Manager's
// (apikey.Config.MaxKeysPerOwner): Create enforces them, and the portal
// turns apikey.ErrTooManyKeys into a message on the form.
//
// State-changing requests are protected against cross-site request forgery
// by http.CrossOriginProtection: a browser POST from another origin gets a
// 403. Every response carries Cache-Control: no-store, a Content Security
// Policy that allows nothing but the portal's own files, X-Frame-Options:
// DENY, X-Content-Type-Options: nosniff and Referrer-Policy: same-origin.
// Manager calls carry the actor "owner:" + owner (apikey.WithActor), so
// they appear in the audit log under the owner's name.
//
// The handler is safe for concurrent use.
package apikeyportal
