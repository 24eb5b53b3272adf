package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyhttp"
	"github.com/go-apikey/apikey/apikeyotel"
	"github.com/go-apikey/apikey/apikeyprom"
	"github.com/go-apikey/apikey/cmd/apikey/internal/admin"
	"github.com/go-apikey/apikey/cmd/apikey/internal/server"
	"github.com/go-apikey/apikey/ottercache"
	"github.com/go-apikey/apikey/postgres"
	"github.com/go-apikey/apikey/redislimit"
)

func init() { register(newServeCommand) }

// defaultAddr is where serve listens without --addr: loopback only.
const defaultAddr = "127.0.0.1:8080"

// shutdownTimeout bounds the graceful shutdown: requests in flight get this
// long to finish, then the Manager gets as long to write pending usage.
const shutdownTimeout = 10 * time.Second

// defaultCreditLease is --credit-lease's default: a hot key's spends make
// one database transaction per few hundred, in the background, which
// PostgreSQL's synced commits needed (with 100, one hot key on PostgreSQL
// ran at 0.60 of the route without credits, 0.88 with 1000); a lease is
// never more than a sixteenth of a balance (apikey.LeaseShare), so that a
// small balance is leased little and a balance nearly spent not at all.
const defaultCreditLease = 1000

// defaultLimitLease is --limit-lease's default: long enough that a key
// busy on this server makes one Redis decision per many requests (at 400
// requests a second, one per 20), short enough that what a lease holds of
// a bucket's time, and a change of a limit, is felt for a twentieth of a
// second at most.
const defaultLimitLease = 50 * time.Millisecond

// maxLimitLease bounds --limit-lease: a lease holds its length of the
// bucket's time, and a limit changed elsewhere applies here only once it
// has ended.
const maxLimitLease = time.Second

// redisTimeout bounds the first round trip to Redis.
const redisTimeout = 5 * time.Second

// serveOptions are the flags of serve.
type serveOptions struct {
	addr     string
	cacheTTL time.Duration
	noCache  bool

	secureCookies bool // --secure-cookies: admin cookie always Secure
	trustProxy    bool // --trust-proxy: client address from X-Forwarded-For

	checkIntegrity bool // --check-integrity: /readyz runs the integrity check too

	redisTimeout time.Duration // --redis-timeout: bound of one rate limit decision in Redis
	limitLease   time.Duration // --limit-lease: how long cells of a busy limit are held here (redislimit.Config.Lease)
	creditLease  int64         // --credit-lease: most credits leased per key (apikey.Config.CreditLease)
	strict       bool          // the global --strict-revocation

	requireTwoFactor bool // --require-two-factor: admin site users must use TOTP

	headers []string // --header: headers that carry the raw key
	schemes []string // --scheme: Authorization schemes of a key

	pprofAddr string // --pprof: loopback address of net/http/pprof; empty means off
	logFormat string // --log-format: text or json
	logLevel  string // --log-level: debug, info, warn or error
	level     slog.Level

	leakKeysFile string   // --leak-keys
	leakPolicy   string   // --leak-policy
	leakOwners   []string // --leak-policy-owner OWNER=ACTION, repeated

	hooks hookOptions // webhooks and the scheduler (hooks.go)

	// Read from the leak flags by check.
	leakKeys server.LeakKeys
	policy   apikey.LeakPolicy

	environment    string         // --environment: live, test or empty (both)
	inactivity     string         // --inactivity-expiry: the old name of the global --default-inactivity-expiry
	trustedProxies []string       // --trusted-proxies: CIDR ranges
	proxies        []netip.Prefix // read from trustedProxies by check
}

func newServeCommand(a *app) *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve [--addr HOST:PORT] [--cache-ttl D | --no-cache] [--redis HOST:PORT]",
		Short: "Run the HTTP API",
		Long: `Run the apikey HTTP API: a JSON API under /v1 to create, list, change,
revoke, roll, delete and verify keys, the audit log (/v1/events) and usage
counts (/v1/keys/{id}/usage), /v1/openapi.json, /healthz, /readyz and
Prometheus metrics at /metrics (public, like /healthz).

Admin site: /admin/ (and / leads there) is a server-rendered site to
search, create, change, revoke and roll keys, read the audit log, and see
usage charts. Its users are made with "apikey admin create-user EMAIL";
on start, serve prints the site's address and, while it has no user, that
command.

The API is protected by keys of this same database: apikey:admin grants
every route, apikey:verify only POST /v1/verify. Make the first admin key
with the CLI:

  apikey create --name admin --scope apikey:admin

Verified keys are cached in memory for --cache-ttl (30s). Changes made
through this server take effect at once. Changes made elsewhere (other
servers, the CLI, plain SQL):
  - always: database triggers record every change of a key, and the server
    reads that log every 250ms and evicts what changed; on SQLite without
    Redis, this is how a key revoked with the CLI stops working here.
  - PostgreSQL: every instance also listens for the database's
    notifications and evicts changed keys within milliseconds.
  - --redis HOST:PORT (or APIKEY_REDIS_ADDR): instances, and CLI commands
    given the same Redis, publish the ids of the keys they change on the
    Redis channel apikey:invalidate and evict those the others publish, on
    SQLite or PostgreSQL. With --redis, Redis replaces PostgreSQL
    notifications: run every instance with it.
Rate limits and credits (see docs/limits.md): POST /v1/verify counts the
limits of the key it verifies (and of its owner) and spends the credits it
is asked to, exactly; every protected route applies the calling key's
"requests" limit. With --redis the limits are counted in Redis, shared by
every instance run with it; a decision waits at most --redis-timeout
(250ms), then a limit refuses the request (503) unless it is fail-open.
A decision for a key busy on this server may also take a few cells of its
bucket ahead, which its next requests here take in memory for at most
--limit-lease (50ms); Redis counts them as arriving when that ends, so
no window lets through more than the limit, and cells left are forfeited.
Without --redis each instance counts its own requests. Balances are always
in the database. A spend leases up to --credit-lease (1000) more credits,
never more than a sixteenth of the balance, which the key's next spends on
this server take in memory; what is left goes back to the database within
a second, at once when the key or its owner changes, and on stop. Until
then the balance the database shows lacks it, and a server killed without
stopping forfeits it. --credit-lease 0 makes every spend a transaction.

The cache is trusted only for a second past the start of the last complete
read of the change log, and, with a listener, only while it is subscribed
and its heartbeat (every second) comes back within 2 seconds: from start
until then, and whenever the database or the connection is lost or silent,
every request reads the database instead.

Strict revocation: each server records itself in the database with the
last change it has applied. With --strict-revocation (or
APIKEY_STRICT_REVOCATION=true), revoke and delete through the API answer
only once every live server has applied the change, or 504
not_acknowledged after 3 seconds, naming the servers that had not (the
change is applied all the same, and those servers no longer trust their
caches by then). A request chooses with ?strict=true or ?strict=false;
"apikey revoke --strict" does the same from the command line.
Usage counts and last-used times are written every 10 seconds and on stop.

OpenTelemetry: when OTEL_EXPORTER_OTLP_ENDPOINT or
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, or OTEL_TRACES_EXPORTER=otlp,
every verification (span apikey.verify) and every database call
(apikey.store.*) is traced and exported with OTLP over HTTP/protobuf,
configured by the standard OTEL_* variables; service.name is
OTEL_SERVICE_NAME ("apikey" by default). Spans never hold a key or its
secret. Pending spans are flushed on stop.

With --check-integrity, /readyz also runs the checks of migrate --check and
answers 503 while the database's revocation triggers or constraints are
missing, changed or disabled (the reason is logged).

Leak reports: POST /v1/leaks takes the reports of GitHub's secret scanning
partner program, signed with one of the keys of --leak-keys FILE (the JSON
of https://api.github.com/meta/public_keys/secret_scanning, saved; without
it, every report is refused). A reported token that is one of this
database's keys, whatever its state, is recorded (the admin site lists
leaks at /admin/leaks), audited as key.leaked with its URL, and, under
--leak-policy (revoke, the default, or notify: record only), revoked.
--leak-policy-owner OWNER=ACTION, repeated, overrides the policy for the
keys of an owner. (A third action, disabling a key until its owner acts,
does not exist yet: keys have no state that can be undone.) See
docs/secret-scanning.md.

Environments, network allowlists and inactivity expiry (see
docs/lifecycle.md): with --environment live (or test) the server accepts
the keys of that environment only, on every route; another key is refused
with 403 wrong_environment (and POST /v1/verify answers wrong_environment).
A key with a network allowlist is accepted only from its ranges (403
ip_not_allowed): the client is the connection's address, unless it is one
of --trusted-proxies, in which case it is the right-most X-Forwarded-For
entry that is not a trusted proxy. --default-inactivity-expiry 90d (a
global setting, which list, show and verify read too, so that they report
the states this server enforces; --inactivity-expiry is its old name, still
accepted) expires every key unused for 90 days that has no policy of its
own.

The log, on standard error, holds one record per request (level info,
error for a 5xx answer) and the server's warnings and errors, in the
format of --log-format (text: key=value, json: one object per line), at
--log-level and above (info by default). Records are written in batches,
at most 50ms after they are made, and all of them on stop.

--pprof HOST:PORT (off by default; loopback addresses only) serves the
profiles of net/http/pprof at /debug/pprof/ on a listener of its own,
logged as "apikey: pprof on http://HOST:PORT/debug/pprof/".

Every flag is also a setting: APIKEY_<FLAG> (APIKEY_CACHE_TTL,
APIKEY_HEADER...) or the config file of --config set it (see "apikey help
settings"). --header X-Api-Authorization reads keys from django-apikey's
header; --scheme Api-Key stops Bearer tokens from being taken for keys.

Port 0 picks a free port. The bound address is logged on standard error as
"apikey: listening on http://HOST:PORT", followed by the admin site's
address, then one line per request.
` + hooksHelp + `

SIGINT or SIGTERM stops the server gracefully: requests in flight get 10
seconds to finish, and the command exits 0.`,
		Example: `  apikey serve
  apikey serve --addr 0.0.0.0:8080 --db postgres://apikey@db/apikey
  apikey serve --redis 127.0.0.1:6379 --cache-ttl 1m
  apikey serve --environment live --default-inactivity-expiry 90d --trusted-proxies 10.0.0.0/8`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.check(a); err != nil {
				return err
			}
			if err := checkTracingEnv(a.getenv); err != nil {
				return err
			}
			o.strict = a.strictFlag
			if old := a.renamedFrom("default-inactivity-expiry"); old != "" {
				fmt.Fprintf(a.stderr, "apikey: %s is an old name: use --default-inactivity-expiry (%s, \"default-inactivity-expiry\" in the config file), which every command reads\n", old, envName("default-inactivity-expiry"))
			}
			return a.serve(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", defaultAddr, "address to listen on, HOST:PORT (port 0 picks a free port)")
	f.DurationVar(&o.cacheTTL, "cache-ttl", ottercache.DefaultTTL, "how long a verified key is cached")
	f.BoolVar(&o.noCache, "no-cache", false, "read the database on every verification")
	f.BoolVar(&o.secureCookies, "secure-cookies", false, "always mark the admin session cookie Secure (behind a TLS-terminating proxy)")
	f.BoolVar(&o.trustProxy, "trust-proxy", false, "take the client address of login throttling from the last X-Forwarded-For entry (only behind a proxy that sets it)")
	f.Int64Var(&o.creditLease, "credit-lease", defaultCreditLease, "most credits a spend leases for the next spends of its key to take in memory, never more than a sixteenth of the balance; given back within a second (0: every spend is a database transaction)")
	f.DurationVar(&o.limitLease, "limit-lease", defaultLimitLease, "with --redis: how long this server may hold cells of a busy rate limit that it took from Redis ahead of its requests, which take them without a round trip (never more than the limit allows; 0: every decision in Redis; at most 1s)")
	f.DurationVar(&o.redisTimeout, "redis-timeout", redislimit.DefaultTimeout, "with --redis: how long a rate limit decision may wait for Redis before the request is refused (503), or let through for a fail_open limit")
	f.BoolVar(&o.checkIntegrity, "check-integrity", false, "make /readyz also run the checks of migrate --check (triggers and constraints intact and enabled)")
	f.StringVar(&o.logFormat, "log-format", "text", "format of the log on standard error: text (key=value) or json (one object per line)")
	f.StringVar(&o.logLevel, "log-level", "info", "least level logged: debug, info, warn or error (the request records are info, error for 5xx)")
	f.StringVar(&o.pprofAddr, "pprof", "", "serve net/http/pprof on this loopback HOST:PORT (off by default; port 0 picks a free port)")
	f.StringVar(&o.leakKeysFile, "leak-keys", "", "JSON file of the public keys that sign leak reports (GitHub's secret scanning keys); without it POST /v1/leaks refuses every report")
	f.StringVar(&o.leakPolicy, "leak-policy", string(apikey.LeakRevoke), "what a confirmed leak does to its key: revoke or notify (record only)")
	f.StringArrayVar(&o.leakOwners, "leak-policy-owner", nil, "OWNER=ACTION: the leak policy for the keys of OWNER (repeatable)")
	f.BoolVar(&o.requireTwoFactor, "require-two-factor", false, "make every user of the admin site set up two-factor codes (TOTP) before anything else")
	f.StringSliceVar(&o.headers, "header", nil, `header that carries a raw key, such as X-Api-Authorization (repeat, or separate with commas; default X-Api-Key; "none" for no header)`)
	f.StringVar(&o.environment, "environment", "", "accept the keys of this environment only, live or test (default both); a key of the other is refused with 403 wrong_environment")
	f.StringVar(&o.inactivity, "inactivity-expiry", "", "the old name of --default-inactivity-expiry")
	_ = f.MarkHidden("inactivity-expiry")
	f.StringSliceVar(&o.trustedProxies, "trusted-proxies", nil, "CIDR ranges or addresses of the reverse proxies in front of the server, whose X-Forwarded-For is believed for the network allowlists of keys (repeat, or separate with commas; default none)")
	o.hooks.flags(f)
	f.StringSliceVar(&o.schemes, "scheme", nil, `Authorization scheme that introduces a key (repeat, or separate with commas; default Api-Key and Bearer; "none" to not read Authorization)`)
	// Every flag of serve is a setting: APIKEY_<FLAG> and the config file
	// set it too (config.go).
	markSettings(cmd)
	return cmd
}

// check validates the settings before anything touches the database.
func (o *serveOptions) check(a *app) error {
	if err := checkAddr(o.addr); err != nil {
		return usageError(fmt.Errorf("%s%w", settingPrefix(a, "addr"), err))
	}
	if o.noCache && a.settingSet("cache-ttl") {
		return usagef("%s and %s cannot be combined: remove one", a.setting("cache-ttl"), a.setting("no-cache"))
	}
	if o.cacheTTL <= 0 {
		return usagef("invalid %s %s: must be positive, such as 30s", a.setting("cache-ttl"), o.cacheTTL)
	}
	var err error
	if o.headers, err = keySources(o.headers); err != nil {
		return usagef("invalid %s: %v", a.setting("header"), err)
	}
	if o.schemes, err = keySources(o.schemes); err != nil {
		return usagef("invalid %s: %v", a.setting("scheme"), err)
	}
	if len(o.headers) == 0 && o.headers != nil && len(o.schemes) == 0 && o.schemes != nil {
		return usagef("%s and %s are both none: no request could present a key", a.setting("header"), a.setting("scheme"))
	}
	// The middleware checks names; ask it now, with each list alone.
	if _, err := apikeyhttp.New(stubVerifier{}, apikeyhttp.Config{Headers: o.headers}); err != nil && o.headers != nil {
		return usagef("invalid %s: %s", a.setting("header"), strings.TrimPrefix(err.Error(), "apikeyhttp: "))
	}
	if _, err := apikeyhttp.New(stubVerifier{}, apikeyhttp.Config{Schemes: o.schemes}); err != nil && o.schemes != nil {
		return usagef("invalid %s: %s", a.setting("scheme"), strings.TrimPrefix(err.Error(), "apikeyhttp: "))
	}
	if o.creditLease < 0 {
		return usagef("invalid %s %d: must not be negative (0 turns leases off)", a.setting("credit-lease"), o.creditLease)
	}
	if o.limitLease < 0 || o.limitLease > maxLimitLease {
		return usagef("invalid %s %s: must be from 0 (leases off) to %s", a.setting("limit-lease"), o.limitLease, maxLimitLease)
	}
	if o.redisTimeout <= 0 {
		return usagef("invalid %s %s: must be positive", a.setting("redis-timeout"), o.redisTimeout)
	}
	if o.environment != "" && !apikey.Environment(o.environment).Valid() {
		return usagef("invalid %s %q: want live or test", a.setting("environment"), o.environment)
	}
	if len(o.trustedProxies) > 0 {
		ps, err := apikey.ParseCIDRs(o.trustedProxies)
		var ve *apikey.ValidationError
		if errors.As(err, &ve) {
			return usagef("invalid %s: %s", a.setting("trusted-proxies"), ve.Reason)
		} else if err != nil {
			return err
		}
		o.proxies = ps
	}
	// The key.inactive_warning rule of the scheduler reads each key's
	// inactivity expiry, with this service's default (checkGlobal).
	idle := a.idle
	o.hooks.inactiveAt = func(k *apikey.Key) (time.Time, bool) { return k.InactiveAt(idle) }
	if err := o.hooks.check(a); err != nil {
		return err
	}
	if err := checkPprofAddr(o.pprofAddr); err != nil {
		return err
	}
	if o.logFormat != "text" && o.logFormat != "json" {
		return usagef("invalid %s %q: want text or json", a.setting("log-format"), o.logFormat)
	}
	if err := o.level.UnmarshalText([]byte(o.logLevel)); err != nil || !slices.Contains([]string{"debug", "info", "warn", "error"}, strings.ToLower(o.logLevel)) {
		return usagef("invalid %s %q: want debug, info, warn or error", a.setting("log-level"), o.logLevel)
	}
	return o.checkLeaks()
}

// stubVerifier lets check build a middleware only to validate its
// settings; it is never called.
type stubVerifier struct{}

func (stubVerifier) Verify(context.Context, string) (*apikey.Key, error) {
	return nil, apikey.ErrInvalidKey
}

// settingPrefix returns "APIKEY_X: " when the setting did not come from
// its flag, whose name the message already holds.
func settingPrefix(a *app, name string) string {
	if s := a.sources[name]; s.kind == "env" || s.kind == "file" {
		return s.name + ": "
	}
	return ""
}

// keySources reads --header or --scheme: nil (not set) keeps the default,
// "none" alone is the empty list.
func keySources(vals []string) ([]string, error) {
	if vals == nil {
		return nil, nil
	}
	if len(vals) == 1 && strings.EqualFold(vals[0], "none") {
		return []string{}, nil
	}
	for _, v := range vals {
		if v == "" || strings.EqualFold(v, "none") {
			return nil, errors.New(`"none" must stand alone`)
		}
	}
	return vals, nil
}

// checkLeaks reads the leak flags: the policy and the signing keys.
func (o *serveOptions) checkLeaks() error {
	action, err := leakAction(o.leakPolicy)
	if err != nil {
		return usagef("invalid --leak-policy %q: %v", o.leakPolicy, err)
	}
	o.policy = apikey.LeakPolicy{Default: action}
	for _, kv := range o.leakOwners {
		i := strings.LastIndexByte(kv, '=')
		if i <= 0 {
			return usagef("invalid --leak-policy-owner %q: want OWNER=ACTION, such as acme=notify", kv)
		}
		owner, value := kv[:i], kv[i+1:]
		action, err := leakAction(value)
		if err != nil {
			return usagef("invalid --leak-policy-owner %q: %v", kv, err)
		}
		if _, dup := o.policy.Owners[owner]; dup {
			return usagef("invalid --leak-policy-owner %q: owner %q is given twice", kv, owner)
		}
		if o.policy.Owners == nil {
			o.policy.Owners = map[string]apikey.LeakAction{}
		}
		o.policy.Owners[owner] = action
	}
	if o.leakKeysFile == "" {
		return nil
	}
	data, err := os.ReadFile(o.leakKeysFile)
	if err != nil {
		return usagef("--leak-keys: %v", err)
	}
	if o.leakKeys, err = server.ParseLeakKeys(data); err != nil {
		return usagef("--leak-keys %s: %v", o.leakKeysFile, err)
	}
	return nil
}

// leakAction reads a leak action.
func leakAction(s string) (apikey.LeakAction, error) {
	a := apikey.LeakAction(s)
	switch {
	case a.Valid():
		return a, nil
	case s == "disable":
		return "", errors.New("disable is not available yet (keys have no state that can be undone): want revoke or notify")
	}
	return "", errors.New("want revoke or notify")
}

// serve runs the server until ctx is done: it wires the Manager (metrics,
// cache, invalidation, tracing), the API and the admin site, listens, and
// on stop shuts down the HTTP server, then the Manager, then tracing.
func (a *app) serve(ctx context.Context, o serveOptions) error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	db, err := a.openDB(ctx)
	if err != nil {
		return err
	}
	if err := db.migrate(ctx); err != nil {
		return err
	}
	reg, metrics, err := newRegistry()
	if err != nil {
		return err
	}
	cfg.Metrics = metrics
	if !o.noCache {
		cache, err := ottercache.New(ottercache.Config{TTL: o.cacheTTL})
		if err != nil {
			return err
		}
		defer cache.Close()
		cfg.Cache = cache
	}
	logger, logs := newLogger(a.stderr, o)
	defer logs.Flush()
	if err := a.invalidation(ctx, &cfg, db, logger); err != nil {
		return err
	}
	if l, err := a.redisLimiter(o.redisTimeout, o.limitLease); err != nil {
		return err
	} else if l != nil {
		cfg.Limiter = l
	}
	// The change log of the database, read by the Manager (its store may be
	// wrapped for tracing below), and strict revocation over it.
	if f, ok := db.store.(apikey.ChangeFeed); ok {
		cfg.ChangeFeed = f
	}
	cfg.StrictRevocation = o.strict
	cfg.CreditLease = o.creditLease
	cfg.Environment = apikey.Environment(o.environment)

	// Tracing, when the OTEL_* variables ask for it: the store below the
	// Manager and verification above it.
	tp, stopTracing, err := a.startTracing(ctx, logger)
	if err != nil {
		return err
	}
	var store apikey.Store = db.store
	if tp != nil {
		defer func() { // on an early return; a no-op after the one below
			sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer cancel()
			_ = stopTracing(sctx)
		}()
		store = apikeyotel.NewStore(db.store, tp)
		// The traced store offers the methods of apikey.Store only.
		cfg.LimitStore, _ = db.store.(apikey.LimitStore)
	}
	m, err := apikey.NewManager(store, cfg)
	if err != nil {
		return err
	}
	a.mgr = m // closed by closeDB too, should this return early
	if o.strict && !m.StrictSupported() {
		return fmt.Errorf("--strict-revocation: %w", apikey.ErrStrictUnsupported)
	}
	if err := metrics.WatchDroppedEvents(m.DroppedEvents); err != nil {
		return err
	}
	var cells func() (int, int64)
	if l, ok := cfg.Limiter.(*redislimit.Limiter); ok {
		cells = l.Leased
		if err := metrics.WatchLeasedDecisions(l.LeasedDecisions); err != nil {
			return err
		}
	}
	if err := metrics.WatchLeases(m.LeasedCredits, cells); err != nil {
		return err
	}
	var verifier apikey.Verifier
	if tp != nil {
		verifier = apikeyotel.NewVerifier(m, tp)
	}
	srv, err := newServer(o, m, verifier, db, reg, logger)
	if err != nil {
		return err
	}
	stopHooks := startHooks(ctx, o.hooks, db, m, logger)
	defer stopHooks() // on an early return; a no-op after the one below
	ln, err := listen(o.addr)
	if err != nil {
		_ = m.Close(context.Background())
		return err
	}
	if o.pprofAddr != "" {
		pln, err := listen(o.pprofAddr)
		if err != nil {
			_ = ln.Close()
			_ = m.Close(context.Background())
			return err
		}
		fmt.Fprintf(a.stderr, "apikey: pprof on http://%s/debug/pprof/\n", pln.Addr())
		pctx, stopPprof := context.WithCancel(ctx)
		defer stopPprof()
		go func() {
			_ = runHTTP(pctx, &http.Server{Handler: pprofHandler(), ReadHeaderTimeout: server.ReadHeaderTimeout}, pln)
		}()
	}
	logs.Flush() // what was logged so far comes before the address
	fmt.Fprintf(a.stderr, "apikey: listening on http://%s\n", ln.Addr())
	a.firstRun(ctx, db, ln.Addr())
	err = runHTTP(ctx, srv.HTTPServer(), ln)
	stopHooks() // attempts in flight end; their outcome is recorded

	mctx, mcancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer mcancel()
	err = errors.Join(err, m.Close(mctx))
	if tp != nil {
		// After the Manager, whose last usage flush is traced too. A
		// collector that is down costs spans, not the exit status.
		if terr := stopTracing(mctx); terr != nil {
			logger.Warn("apikey: cannot flush traces", "err", terr)
		}
	}
	logs.Flush()
	if err != nil {
		return fmt.Errorf("stopping the server: %w", err)
	}
	fmt.Fprintln(a.stderr, "apikey: stopped")
	return nil
}

// newLogger returns the logger of serve, in the format and at the level of
// o, and the buffer it writes through to w (see logWriter): the caller
// flushes it before writing to w itself and on return.
func newLogger(w io.Writer, o serveOptions) (*slog.Logger, *logWriter) {
	lw := newLogWriter(w)
	opts := &slog.HandlerOptions{Level: o.level}
	if o.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(lw, opts)), lw
	}
	return slog.New(slog.NewTextHandler(lw, opts)), lw
}

// newRegistry returns the metrics of the server, on a registry of its own
// that also holds the Go runtime's and the process's.
func newRegistry() (*prometheus.Registry, *apikeyprom.Metrics, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := apikeyprom.New(reg, "")
	return reg, metrics, err
}

// invalidation chooses how the Manager of cfg hears of changes made by
// other processes: Redis pub/sub with --redis (checked to be reachable),
// else PostgreSQL LISTEN/NOTIFY on PostgreSQL. The Manager runs the
// listener from NewManager (before the first request) to Close and
// bypasses its cache whenever invalidations may be missed; the failures it
// reports are logged.
func (a *app) invalidation(ctx context.Context, cfg *apikey.Config, db *database, logger *slog.Logger) error {
	if a.rdb != nil {
		pctx, cancel := context.WithTimeout(ctx, redisTimeout)
		err := a.rdb.Ping(pctx).Err()
		cancel()
		if err != nil {
			return &codedError{code: exitTrouble, err: fmt.Errorf("cannot reach Redis at %s: %w", a.rdb.Options().Addr, err)}
		}
	} else if pg, ok := db.store.(*postgres.Store); ok {
		cfg.Invalidator = pg // LISTEN/NOTIFY
	}
	cfg.OnInvalidationError = func(err error) { logInvalidationError(logger, err) }
	return nil
}

// newServer builds the HTTP API with the admin site mounted under it.
func newServer(o serveOptions, m *apikey.Manager, verifier apikey.Verifier, db *database, reg *prometheus.Registry, logger *slog.Logger) (*server.Server, error) {
	// The store answers /readyz; both backends can ping.
	pinger, _ := db.store.(server.Pinger)
	if o.checkIntegrity && pinger != nil {
		pinger = integrityPinger{pinger, db.store.CheckIntegrity}
	}
	hooks := db.webhookService(m)
	adminCfg := admin.Config{Manager: m, Store: db.admin, Accounts: db.accounts, RequireTwoFactor: o.requireTwoFactor, Logger: logger,
		Webhooks: hooks}
	if o.secureCookies {
		adminCfg.SecureCookies = admin.SecureAlways
	}
	if o.trustProxy {
		adminCfg.ClientAddress = forwardedFor
	}
	adminSite, err := admin.New(adminCfg)
	if err != nil {
		return nil, err
	}
	return server.New(server.Config{
		Manager: m, Verifier: verifier, Pinger: pinger, Logger: logger, Admin: adminSite,
		Metrics:  promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelError)}),
		LeakKeys: o.leakKeys, LeakPolicy: o.policy,
		KeyHeaders: o.headers, KeySchemes: o.schemes, TrustedProxies: o.proxies,
		Webhooks: hooks,
	})
}

// listen opens the server's socket; its error names the address once.
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Err != nil {
			err = op.Err // without the repeated address
		}
		return nil, &codedError{code: exitTrouble, err: fmt.Errorf("cannot listen on %s: %w", addr, err)}
	}
	return ln, nil
}

// runHTTP serves hs on ln until ctx is done or serving fails, then shuts
// it down gracefully, giving requests in flight shutdownTimeout.
func runHTTP(ctx context.Context, hs *http.Server, ln net.Listener) error {
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	var serveErr error
	select {
	case serveErr = <-served:
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	if serveErr == nil {
		serveErr = <-served
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return errors.Join(serveErr, err)
}

// checkAddr validates --addr before anything touches the database.
func checkAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err == nil {
		n, perr := strconv.Atoi(port)
		if perr != nil || n < 0 || n > 65535 {
			err = errors.New("bad port")
		}
	}
	if err == nil && host != "" && net.ParseIP(host) == nil && !validHostname(host) {
		err = errors.New("bad host")
	}
	if err != nil {
		return usagef("invalid --addr %q: want HOST:PORT, such as 127.0.0.1:8080 (port 0 picks a free port)", addr)
	}
	return nil
}

// checkPprofAddr validates --pprof: empty (off) or a loopback HOST:PORT,
// since profiles reveal the program's internals.
func checkPprofAddr(addr string) error {
	if addr == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err == nil {
		n, perr := strconv.Atoi(port)
		if perr != nil || n < 0 || n > 65535 {
			err = errors.New("bad port")
		}
	}
	if ip := net.ParseIP(host); err == nil && (host == "localhost" || ip != nil && ip.IsLoopback()) {
		return nil
	}
	return usagef("invalid --pprof %q: want a loopback HOST:PORT, such as 127.0.0.1:6060 (port 0 picks a free port)", addr)
}

// pprofHandler serves the profiles of net/http/pprof under /debug/pprof/,
// on a mux of its own (never the default one).
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// validHostname reports whether s looks like a DNS name: letters, digits,
// hyphens and dots.
func validHostname(s string) bool {
	if len(s) > 253 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// forwardedFor returns the client address a trusted reverse proxy appended
// to X-Forwarded-For (its last entry), or the connection's peer when there
// is none. Earlier entries come from the client and are not trusted.
func forwardedFor(r *http.Request) string {
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		last := xff[len(xff)-1]
		if i := strings.LastIndexByte(last, ','); i >= 0 {
			last = last[i+1:]
		}
		if addr := strings.TrimSpace(last); addr != "" {
			return addr
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// logInvalidationError logs a failure of the invalidations between
// instances, with what it means for this one.
func logInvalidationError(logger *slog.Logger, err error) {
	switch {
	case errors.Is(err, apikey.ErrChangeFeed):
		logger.Warn("apikey: cannot read the change log of the database; the cache is bypassed one second after the last complete read, until a read completes", "err", err)
	case errors.Is(err, apikey.ErrNotPublished):
		logger.Warn("apikey: invalidation not published: other instances may keep the key cached until --cache-ttl ends", "err", err)
	default:
		logger.Warn("apikey: invalidations not received; verifying against the database until the listener is back", "err", err)
	}
}

// integrityPinger is the /readyz check of --check-integrity: the store
// answers, and its rules are intact.
type integrityPinger struct {
	server.Pinger
	check func(ctx context.Context) error
}

// Ping pings the store, then runs its integrity check.
func (p integrityPinger) Ping(ctx context.Context) error {
	if err := p.Pinger.Ping(ctx); err != nil {
		return err
	}
	return p.check(ctx)
}
