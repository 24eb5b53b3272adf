// Package bench holds the module's cross-package benchmarks: verification
// with and without the cache and metrics against the floor of one SHA-256,
// and cold (uncached) verification as the store grows. It has no code of
// its own.
//
// Cached verification, against SHA-256 of a key-sized input, in one run:
//
//	go test ./bench -run '^$' -bench BenchmarkCachedVerify -cpu 1,2 -count 10 | tee cached.txt
//	benchstat cached.txt
//
// Cold verification with 1,000 keys, and with 1,000,000 keys when
// APIKEY_BENCH_MILLION=1 (seeding takes some seconds per backend), on
// SQLite and, when APIKEY_TEST_POSTGRES_DSN is set, on PostgreSQL in a
// throw-away schema:
//
//	APIKEY_BENCH_MILLION=1 go test ./bench -run '^$' -bench BenchmarkColdVerify -benchtime 20000x
//
// The machine these run on is shared and noisy: compare ratios measured in
// one run, not absolute numbers across runs.
package bench
