package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/cmd/apikey/internal/admin"
	"github.com/go-apikey/apikey/djangohash"
	"github.com/go-apikey/apikey/postgres"
	"github.com/go-apikey/apikey/sqlite"
)

// defaultDB is the database used when neither --db nor APIKEY_DB is set.
const defaultDB = "apikey.db"

// openTimeout bounds opening the database, the first round trip included.
const openTimeout = 15 * time.Second

// location says where the database is.
type location struct {
	driver string // "sqlite" or "postgres"
	// target is the SQLite file path or the PostgreSQL URL. A URL may hold
	// a password: it is never printed.
	target string
}

// parseLocation reads the value of --db or APIKEY_DB.
func parseLocation(s string) (location, error) {
	switch {
	case s == "":
		return location{}, errors.New("the database location is empty")
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"):
		return location{driver: "postgres", target: s}, nil
	case strings.HasPrefix(s, "sqlite:"):
		path := strings.TrimPrefix(strings.TrimPrefix(s, "sqlite:"), "//")
		if path == "" {
			return location{}, errors.New(`the database location "sqlite:" names no file`)
		}
		return location{driver: "sqlite", target: path}, nil
	}
	if scheme, _, ok := strings.Cut(s, "://"); ok && !strings.ContainsAny(scheme, `/\`) {
		return location{}, fmt.Errorf("unsupported database %q: want a file path, sqlite:PATH or a postgres:// URL", scheme+"://…")
	}
	return location{driver: "sqlite", target: s}, nil
}

// database is an open store of either kind.
type database struct {
	store interface {
		apikey.Store
		Migrate(ctx context.Context) error
		CheckIntegrity(ctx context.Context) error
	}
	// admin persists the admin site's users and sessions, accounts their
	// roles, states and two-factor secrets.
	admin    admin.Store
	accounts admin.AccountStore
	loc      location
	close    func() error
}

// location returns where the database is: --db, else APIKEY_DB, else
// defaultDB.
func (a *app) location() (location, error) {
	s := a.dbFlag // the flag, APIKEY_DB or the config file (config.go)
	if s == "" {
		s = defaultDB
	}
	loc, err := parseLocation(s)
	if err != nil {
		return location{}, usageError(fmt.Errorf("%s%w", settingPrefix(a, "db"), err))
	}
	return loc, nil
}

// openDB opens the database once per invocation; run closes it.
func (a *app) openDB(ctx context.Context) (*database, error) {
	if a.db != nil {
		return a.db, nil
	}
	loc, err := a.location()
	if err != nil {
		return nil, err
	}
	// Open pings: an unreachable server is reported here, within
	// openTimeout unless the URL sets a shorter connect_timeout.
	octx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	db := &database{loc: loc}
	switch loc.driver {
	case "postgres":
		// pgconn masks the password in the URL it quotes.
		if _, err := pgxpool.ParseConfig(loc.target); err != nil {
			return nil, usagef("invalid database URL: %v", err)
		}
		s, err := postgres.Open(octx, loc.target)
		if err != nil {
			// "postgres: cannot connect to ADDR: CAUSE" says it once.
			msg := strings.TrimPrefix(err.Error(), "postgres: cannot connect to ")
			return nil, fmt.Errorf("cannot reach the database at %s", msg)
		}
		db.store, db.admin, db.close = s, s.Admin(), func() error { s.Close(); return nil }
		db.accounts = postgresAccounts{s.Admin()}
	default:
		s, err := sqlite.Open(octx, loc.target)
		if err != nil {
			return nil, fmt.Errorf("cannot open the database: %w", err)
		}
		db.store, db.admin, db.close = s, s.Admin(), s.Close
		db.accounts = sqliteAccounts{s.Admin()}
	}
	a.db = db
	return db, nil
}

func (a *app) closeDB() error {
	defer func() {
		if a.rdb != nil { // after the Manager, which publishes through it
			_ = a.rdb.Close()
			a.rdb = nil
		}
	}()
	if a.db == nil {
		return nil
	}
	if a.mgr != nil {
		// Write the usage this command recorded (verify sets last used).
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = a.mgr.Close(ctx)
		cancel()
		a.mgr = nil
	}
	err := a.db.close()
	a.db = nil
	if err != nil {
		return fmt.Errorf("closing the database: %w", err)
	}
	return nil
}

// migrate brings the database schema up to date.
func (db *database) migrate(ctx context.Context) error {
	if err := db.store.Migrate(ctx); err != nil {
		return fmt.Errorf("cannot migrate the database: %w", err)
	}
	return nil
}

// config reads the Manager configuration from the environment.
func (a *app) config() (apikey.Config, error) {
	peppers, err := parsePeppers(a.pepper)
	if err != nil {
		return apikey.Config{}, usagef("%s: %v", a.setting("pepper"), err)
	}
	if err := a.checkManagerSettings(); err != nil {
		return apikey.Config{}, err
	}
	// Keys imported from DRF API Key may carry any Django password hash.
	cfg := apikey.Config{Prefix: a.prefix, SecretLength: a.secretLength, MaxKeysPerOwner: a.maxKeysPerOwner,
		Peppers: peppers, Now: a.now, LegacyHashers: djangohash.Hashers(), InactivityExpiry: a.idle}
	// With Redis, the Manager publishes the keys it changes: the CLI's
	// revocations reach the servers like those of the API.
	bus, err := a.redisBus()
	if err != nil {
		return apikey.Config{}, err
	}
	if bus != nil {
		cfg.Invalidator, cfg.OnInvalidationError = bus, a.warnNotPublished
	}
	// Check the configuration before anything touches the database: the
	// placeholder store is never called.
	check := cfg
	check.UsageFlushInterval = -1 // no background work for the check
	check.InactivityExpiry = 0    // checked by checkGlobal; needs usage tracking
	if _, err := apikey.NewManager(struct{ apikey.Store }{}, check); err != nil {
		return apikey.Config{}, usagef("configuration: %s", strings.TrimPrefix(err.Error(), "apikey: "))
	}
	return cfg, nil
}

// manager returns a Manager over the migrated database.
func (a *app) manager(ctx context.Context) (*apikey.Manager, error) {
	cfg, err := a.config()
	if err != nil {
		return nil, err
	}
	db, err := a.openDB(ctx)
	if err != nil {
		return nil, err
	}
	if err := db.migrate(ctx); err != nil {
		return nil, err
	}
	m, err := apikey.NewManager(db.store, cfg)
	if err != nil {
		return nil, err
	}
	a.mgr = m
	return m, nil
}

// parsePeppers reads APIKEY_PEPPER: empty (no pepper), one secret (version
// 1), or a comma-separated list of VERSION:SECRET whose first entry is the
// current pepper. The list form is recognised by a leading "<digits>:"; a
// single secret is taken whole, commas included. Surrounding spaces are
// ignored. The peppers are then checked as the Manager checks them
// (apikey.CheckPeppers). Errors never contain a secret.
func parsePeppers(s string) ([]apikey.Pepper, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	peppers := []apikey.Pepper{{Version: 1, Secret: []byte(s)}}
	if isVersioned(s) {
		peppers = nil
		for i, entry := range strings.Split(s, ",") {
			entry = strings.TrimSpace(entry)
			v, secret, ok := strings.Cut(entry, ":")
			version, err := strconv.Atoi(v)
			if !ok || !isVersioned(entry) || err != nil || version < 1 {
				return nil, fmt.Errorf("entry %d is not VERSION:SECRET with a version of at least 1", i+1)
			}
			peppers = append(peppers, apikey.Pepper{Version: version, Secret: []byte(secret)})
		}
	}
	if err := apikey.CheckPeppers(peppers); err != nil {
		return nil, errors.New(strings.TrimPrefix(err.Error(), "apikey: pepper: "))
	}
	return peppers, nil
}

// isVersioned reports whether s starts with "<digits>:".
func isVersioned(s string) bool {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i > 0 && i < 10 && i < len(s) && s[i] == ':'
}

// checkGlobal checks the global settings that every command reads
// whether or not it opens the database: the default inactivity expiry.
func (a *app) checkGlobal() error {
	a.idle = 0
	if a.defaultIdle == "" {
		return nil
	}
	d, err := apikey.ParseInactivityExpiry(a.defaultIdle)
	var ve *apikey.ValidationError
	switch {
	case errors.As(err, &ve):
		return usagef("invalid %s %q: %s", a.setting("default-inactivity-expiry"), a.defaultIdle, ve.Reason)
	case err != nil:
		return err
	case d < 0:
		return usagef("invalid %s %q: never is for a key's own policy; leave the setting out for no default", a.setting("default-inactivity-expiry"), a.defaultIdle)
	}
	a.idle = d
	return nil
}

// renamedFrom returns the old name under which the user gave the setting
// name (see renamedSettings): "--inactivity-expiry",
// "APIKEY_INACTIVITY_EXPIRY" or `"inactivity-expiry" in FILE`; "" when
// it was given under its own name or not at all.
func (a *app) renamedFrom(name string) string {
	old := oldSettingName(name)
	src, ok := a.sources[name]
	if old == "" || !ok || src.kind == "default" {
		return ""
	}
	switch {
	case src.name == "--"+old, src.name == envName(old), strings.HasPrefix(src.name, strconv.Quote(old)+" in "):
		return src.name
	}
	return ""
}

// checkManagerSettings checks the settings of the Manager that
// NewManager would refuse, naming each as the user gave it.
func (a *app) checkManagerSettings() error {
	if n := a.secretLength; n != 0 && (n < apikey.MinSecretLength || n > apikey.MaxSecretLength) {
		return usagef("invalid %s %d: want %d to %d base62 characters (default %d); fewer than %d carry less than 128 bits",
			a.setting("secret-length"), n, apikey.MinSecretLength, apikey.MaxSecretLength, apikey.DefaultSecretLength, apikey.MinSecretLength)
	}
	if a.maxKeysPerOwner < 0 {
		return usagef("invalid %s %d: want 0 (unlimited) or more", a.setting("max-keys-per-owner"), a.maxKeysPerOwner)
	}
	if a.prefix != "" {
		if _, err := apikey.NewManager(struct{ apikey.Store }{}, apikey.Config{Prefix: a.prefix, UsageFlushInterval: -1}); err != nil {
			reason := strings.TrimPrefix(err.Error(), fmt.Sprintf("apikey: prefix %q ", a.prefix))
			return usagef("invalid %s %q: %s (1 to 32 characters; default ak)", a.setting("prefix"), a.prefix, reason)
		}
	}
	return nil
}
