module github.com/go-apikey/apikey/djangohash

go 1.26.0

require (
	github.com/go-apikey/apikey v0.0.0
	golang.org/x/crypto v0.58.0
)

require golang.org/x/sys v0.50.0 // indirect

// Sibling modules of this repository are developed together (see go.work);
// these replacements make `go mod tidy` and builds outside the workspace use
// the copies in this checkout. They do not apply to users of the module.
replace github.com/go-apikey/apikey => ..
