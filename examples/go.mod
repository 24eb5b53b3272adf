module github.com/go-apikey/apikey/examples

go 1.26.0

require (
	github.com/go-apikey/apikey v0.0.0
	github.com/go-apikey/apikey/sqlite v0.0.0
)

require (
	github.com/dustin/go-humanize v1.1.0 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/mattn/go-isatty v0.0.24 // indirect
	github.com/ncruces/go-strftime v1.1.0 // indirect
	github.com/remyoudompheng/bigfft v0.0.0-20230129092748-24d4a6f8daec // indirect
	golang.org/x/sys v0.50.0 // indirect
	modernc.org/libc v1.80.1 // indirect
	modernc.org/mathutil v1.7.1 // indirect
	modernc.org/memory v1.12.1 // indirect
	modernc.org/sqlite v1.60.1 // indirect
)

// Sibling modules of this repository are developed together (see go.work);
// these replacements make `go mod tidy` and builds outside the workspace use
// the copies in this checkout. They do not apply to users of the module.
replace (
	github.com/go-apikey/apikey => ..
	github.com/go-apikey/apikey/apikeyotel => ../apikeyotel
	github.com/go-apikey/apikey/apikeyprom => ../apikeyprom
	github.com/go-apikey/apikey/bench => ../bench
	github.com/go-apikey/apikey/cmd/apikey => ../cmd/apikey
	github.com/go-apikey/apikey/internal/browsertest => ../internal/browsertest
	github.com/go-apikey/apikey/ottercache => ../ottercache
	github.com/go-apikey/apikey/postgres => ../postgres
	github.com/go-apikey/apikey/redisbus => ../redisbus
	github.com/go-apikey/apikey/sqlite => ../sqlite
)
