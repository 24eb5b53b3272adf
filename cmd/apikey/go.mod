module github.com/go-apikey/apikey/cmd/apikey

go 1.26.0

require (
	github.com/chromedp/cdproto v0.159.0
	github.com/chromedp/chromedp v0.23.0
	github.com/go-apikey/apikey v0.0.0
	github.com/go-apikey/apikey/apikeyotel v0.0.0
	github.com/go-apikey/apikey/apikeyprom v0.0.0
	github.com/go-apikey/apikey/djangohash v0.0.0
	github.com/go-apikey/apikey/internal/browsertest v0.0.0
	github.com/go-apikey/apikey/ottercache v0.0.0
	github.com/go-apikey/apikey/postgres v0.0.0
	github.com/go-apikey/apikey/redisbus v0.0.0
	github.com/go-apikey/apikey/redislimit v0.0.0
	github.com/go-apikey/apikey/sqlite v0.0.0
	github.com/jackc/pgx/v5 v5.12.0
	github.com/prometheus/client_golang v1.25.0
	github.com/redis/go-redis/v9 v9.23.0
	github.com/spf13/cobra v1.10.2
	go.opentelemetry.io/otel v1.47.0
	go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp v1.47.0
	go.opentelemetry.io/otel/sdk v1.47.0
	go.opentelemetry.io/proto/otlp v1.11.0
	golang.org/x/crypto v0.58.0
	google.golang.org/protobuf v1.36.12
	modernc.org/sqlite v1.60.1
)

require (
	github.com/beorn7/perks v1.0.1 // indirect
	github.com/cenkalti/backoff/v5 v5.0.3 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/dustin/go-humanize v1.1.0 // indirect
	github.com/go-json-experiment/json v0.0.0-20260213210345-44df1a37e875 // indirect
	github.com/go-logr/logr v1.4.4 // indirect
	github.com/go-logr/stdr v1.2.2 // indirect
	github.com/go-redis/redis_rate/v10 v10.0.1 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/grpc-ecosystem/grpc-gateway/v2 v2.31.0 // indirect
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
	github.com/jackc/puddle/v2 v2.2.3 // indirect
	github.com/mattn/go-isatty v0.0.24 // indirect
	github.com/maypok86/otter/v2 v2.4.0 // indirect
	github.com/munnerz/goautoneg v0.0.0-20191010083416-a7dc8b61c822 // indirect
	github.com/ncruces/go-strftime v1.1.0 // indirect
	github.com/prometheus/client_model v0.6.3 // indirect
	github.com/prometheus/common v0.72.0 // indirect
	github.com/prometheus/procfs v0.22.0 // indirect
	github.com/remyoudompheng/bigfft v0.0.0-20230129092748-24d4a6f8daec // indirect
	github.com/spf13/pflag v1.0.9 // indirect
	go.opentelemetry.io/auto/sdk v1.2.1 // indirect
	go.opentelemetry.io/otel/exporters/otlp/otlptrace v1.47.0 // indirect
	go.opentelemetry.io/otel/log v1.47.0 // indirect
	go.opentelemetry.io/otel/metric v1.47.0 // indirect
	go.opentelemetry.io/otel/trace v1.47.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/sync v0.25.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/text v0.44.0 // indirect
	google.golang.org/genproto/googleapis/api v0.0.0-20260928230214-8a89bd6388cc // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260928230214-8a89bd6388cc // indirect
	google.golang.org/grpc v1.84.0 // indirect
	modernc.org/libc v1.80.1 // indirect
	modernc.org/mathutil v1.7.1 // indirect
	modernc.org/memory v1.12.1 // indirect
)

// Sibling modules of this repository are developed together (see go.work);
// these replacements make `go mod tidy` and builds outside the workspace use
// the copies in this checkout. They do not apply to users of the module.
replace (
	github.com/go-apikey/apikey => ../..
	github.com/go-apikey/apikey/apikeyotel => ../../apikeyotel
	github.com/go-apikey/apikey/apikeyprom => ../../apikeyprom
	github.com/go-apikey/apikey/bench => ../../bench
	github.com/go-apikey/apikey/djangohash => ../../djangohash
	github.com/go-apikey/apikey/examples => ../../examples
	github.com/go-apikey/apikey/internal/browsertest => ../../internal/browsertest
	github.com/go-apikey/apikey/ottercache => ../../ottercache
	github.com/go-apikey/apikey/postgres => ../../postgres
	github.com/go-apikey/apikey/redisbus => ../../redisbus
	github.com/go-apikey/apikey/redislimit => ../../redislimit
	github.com/go-apikey/apikey/sqlite => ../../sqlite
)
