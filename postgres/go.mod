module github.com/go-apikey/apikey/postgres

go 1.26.0

require (
	github.com/go-apikey/apikey v0.0.0
	github.com/jackc/pgx/v5 v5.12.0
)

require (
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
	github.com/jackc/puddle/v2 v2.2.3 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
	golang.org/x/sync v0.25.0 // indirect
	golang.org/x/text v0.44.0 // indirect
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
	github.com/go-apikey/apikey/examples => ../examples
	github.com/go-apikey/apikey/internal/browsertest => ../internal/browsertest
	github.com/go-apikey/apikey/ottercache => ../ottercache
	github.com/go-apikey/apikey/redisbus => ../redisbus
	github.com/go-apikey/apikey/sqlite => ../sqlite
)
