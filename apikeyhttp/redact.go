package apikeyhttp

import "regexp"

// keyPattern matches the "<id>_<secret...>" part of anything shaped like a
// key: twelve base62 characters (the id), an underscore, and at least 16
// more (part of a secret is as bad as all of it).
var keyPattern = regexp.MustCompile(`([0-9A-Za-z]{12})_[0-9A-Za-z]{16,}`)

// RedactKeys returns s with anything shaped like a key cut to its prefix
// and id, "ak_3fZ9q0LmA1bc_…", as Token.String shows a key. Use it on text
// a client chose that goes to a log, such as a request path: a key pasted
// where an id belongs must not be written to the logs in clear. The
// middleware applies it to the paths it logs.
func RedactKeys(s string) string {
	return keyPattern.ReplaceAllString(s, "${1}_…")
}
