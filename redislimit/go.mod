module github.com/go-apikey/apikey/redislimit

go 1.26.0

require (
	github.com/go-apikey/apikey v0.0.0
	github.com/go-redis/redis_rate/v10 v10.0.1
	github.com/redis/go-redis/v9 v9.23.0
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
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
	github.com/go-apikey/apikey/postgres => ../postgres
	github.com/go-apikey/apikey/redisbus => ../redisbus
	github.com/go-apikey/apikey/sqlite => ../sqlite
)
