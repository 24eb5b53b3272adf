package apikeytest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
)

// Harness is what a backend's test gives the suite for one fresh, empty,
// migrated and isolated database. Store and Dump are required; Exec is
// required of every SQL backend and may be nil only for a store that has no
// database below its API (memstore).
type Harness struct {
	// Store is the backend under test.
	Store apikey.Store

	// Exec runs one raw SQL statement, without arguments, directly against
	// the backend's database, bypassing the Store. The suite uses it to
	// prove that rules hold below the API: for example
	// `UPDATE apikey_keys SET revoked_at = NULL WHERE id = 'X'` must fail
	// once X is revoked, and `DELETE FROM apikey_events` must fail because
	// the audit log is append-only. Statements are portable between SQLite
	// and PostgreSQL and touch only the tables apikey_keys, apikey_events
	// and apikey_revoked_ids (the ids of revoked keys, kept for good).
	//
	// A store that keeps its data only behind its own methods, such as
	// memstore, has nothing below the API to check and leaves Exec nil:
	// the subtests that need it (RevocationIrreversible,
	// RevocationSurvivesDelete and AuditAppendOnly) are then skipped, and
	// the same rules are checked through the Store alone by the others
	// (RevokedIDsStayTaken, UniqueIDs, UpdateRevoked, Revoke, AuditLog).
	Exec func(ctx context.Context, query string) error

	// Dump returns every byte the backend stores: for SQLite the database
	// file and its -wal file, for PostgreSQL every row of every apikey_
	// table as text, for an in-memory store an encoding of everything it
	// holds. The suite checks that no plaintext secret appears in it and
	// that the key ids do (so that the check can fail).
	Dump func(ctx context.Context) ([]byte, error)
}

// needExec skips the calling subtest when the harness has no Exec: the
// backend has no database that SQL could reach around the Store.
func needExec(t *testing.T, h Harness) {
	t.Helper()
	if h.Exec == nil {
		t.Skip("Harness.Exec is nil: the backend has no database below the Store to check with raw SQL")
	}
}

// TestStore runs the Store conformance suite. newHarness is called once per
// subtest and must return a harness over a fresh, empty, migrated database
// that no other subtest uses; it should register its own cleanup with
// t.Cleanup and may call t.Skip when the backend is not available.
func TestStore(t *testing.T, newHarness func(t *testing.T) Harness) {
	t.Helper()
	tests := []struct {
		name string
		run  func(*testing.T, Harness)
	}{
		{"RoundTrip", testRoundTrip},
		{"EmptyFields", testEmptyFields},
		{"UniqueIDs", testUniqueIDs},
		{"NotFound", testNotFound},
		{"ListFilters", testListFilters},
		{"ListPagination", testListPagination},
		{"Update", testUpdate},
		{"UpdateRevoked", testUpdateRevoked},
		{"Frozen", testFrozen},
		{"Revoke", testRevoke},
		{"RevocationIrreversible", testRevocationIrreversible},
		{"RevocationSurvivesDelete", testRevocationSurvivesDelete},
		{"RevokedIDsStayTaken", testRevokedIDsStayTaken},
		{"OwnerLimit", testOwnerLimit},
		{"OwnerLimitConcurrent", testOwnerLimitConcurrent},
		{"Delete", testDelete},
		{"SetHash", testSetHash},
		{"ConditionalSetHash", testConditionalSetHash},
		{"HashUpgradeRacingRoll", testHashUpgradeRacingRoll},
		{"SetHashRevoked", testSetHashRevoked},
		{"RollRevokedMeanwhile", testRollRevokedMeanwhile},
		{"RollRacingRevoke", testRollRacingRevoke},
		{"PlaintextNeverStored", testPlaintextNeverStored},
		{"CancelledContext", testCancelledContext},
		{"AuditLog", testAuditLog},
		{"AuditNotOnFailure", testAuditNotOnFailure},
		{"AuditAppendOnly", testAuditAppendOnly},
		{"ListEvents", testListEvents},
		{"RecordUsage", testRecordUsage},
		{"UsageThroughManager", testUsageThroughManager},
		{"AuditFailureRollsBack", testAuditFailureRollsBack},
		{"GraceAcceptsBothSecrets", testGraceAcceptsBoth},
		{"GraceStartRecordedOnce", testGraceStartOnce},
		{"GraceMaxBound", testGraceMax},
		{"GraceStartsNow", testGraceStartsNow},
		{"RerollDropsOlderSecret", testRerollDropsOlder},
		{"RevokeEndsBothSecrets", testRevokeEndsBoth},
		{"GraceLastUse", testGraceLastUse},
		{"GraceCacheInvalidated", testGraceCacheInvalidated},
		{"DisableEnable", testDisableEnable},
		{"DisableFrozenAfterRevoke", testDisableFrozen},
		{"LifecycleAudit", testLifecycleAudit},
		{"IdentifyPreviousSecret", testIdentifyPrevious},
		{"Environments", testEnvironments},
		{"AllowedCIDRs", testAllowedCIDRs},
		{"InactivityExpiry", testInactivityExpiry},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			if h.Store == nil || h.Dump == nil {
				t.Fatalf("harness is incomplete: Store and Dump are required (got Store=%v, Dump set=%v)",
					h.Store, h.Dump != nil)
			}
			tc.run(t, h)
		})
	}
}

// base is the instant at which the suite's clocks start. It carries
// nanoseconds on purpose: everything stored must come back truncated to
// the microsecond.
var base = time.Date(2031, time.March, 4, 5, 6, 7, 891234567, time.UTC)

// us truncates t to the microsecond precision every store keeps.
func us(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// farEast is a non-UTC location used for inputs, to prove that stores
// return UTC.
var farEast = time.FixedZone("UTC+05:30", 5*3600+30*60)

// clock is a controllable Config.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: base} }

// Now returns the clock's current instant.
func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Add moves the clock forward by d and returns the new instant as the
// Manager sees it (UTC, microseconds).
func (c *clock) Add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return us(c.now)
}

// Set moves the clock to t.
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func newManager(t *testing.T, h Harness, cfg apikey.Config) *apikey.Manager {
	t.Helper()
	m, err := apikey.NewManager(h.Store, cfg)
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	return m
}

func create(t *testing.T, m *apikey.Manager, p apikey.CreateParams) (*apikey.Key, string) {
	t.Helper()
	k, token, err := m.Create(t.Context(), p)
	if err != nil {
		t.Fatalf("Create(%q, owner %q): %v", p.Name, p.Owner, err)
	}
	return k, token
}

func lookup(t *testing.T, h Harness, id string) *apikey.Record {
	t.Helper()
	rec, err := h.Store.Lookup(t.Context(), id)
	if err != nil {
		t.Fatalf("Lookup(%s): %v", id, err)
	}
	if rec == nil {
		t.Fatalf("Lookup(%s) returned nil and no error", id)
	}
	return rec
}

// testID returns a valid 12-character key id made of tag and n.
func testID(tag string, n int) string {
	return fmt.Sprintf("%s%0*d", tag, apikey.IDLength-len(tag), n)
}

// record returns a complete record for direct Store calls.
func record(id, owner, name string, created time.Time) *apikey.Record {
	sum := sha256.Sum256([]byte(id))
	return &apikey.Record{
		Key: apikey.Key{
			ID:        id,
			Prefix:    apikey.DefaultPrefix,
			Name:      name,
			Owner:     owner,
			Scopes:    []string{"read"},
			Metadata:  map[string]string{"id": id},
			CreatedAt: us(created),
		},
		Hash: "sha256$" + hex.EncodeToString(sum[:]),
	}
}

func insert(t *testing.T, h Harness, rec *apikey.Record) {
	t.Helper()
	if err := h.Store.Insert(t.Context(), rec, 0, nil); err != nil {
		t.Fatalf("Insert(%s): %v", rec.ID, err)
	}
}

func ptr[T any](v T) *T { return &v }

// checkKey reports every field of got that differs from want, and every
// time that is not in UTC. State is not compared.
func checkKey(t *testing.T, label string, got, want *apikey.Key) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: key is nil, want %s", label, want.ID)
		return
	}
	if got.ID != want.ID {
		t.Errorf("%s: ID = %q, want %q", label, got.ID, want.ID)
	}
	if got.Prefix != want.Prefix {
		t.Errorf("%s: Prefix = %q, want %q", label, got.Prefix, want.Prefix)
	}
	if got.Name != want.Name {
		t.Errorf("%s: Name = %q, want %q", label, got.Name, want.Name)
	}
	if got.Owner != want.Owner {
		t.Errorf("%s: Owner = %q, want %q", label, got.Owner, want.Owner)
	}
	if got.Scopes == nil || !slices.Equal(got.Scopes, want.Scopes) {
		t.Errorf("%s: Scopes = %#v, want %#v (never nil)", label, got.Scopes, want.Scopes)
	}
	if got.Metadata == nil || !maps.Equal(got.Metadata, want.Metadata) {
		t.Errorf("%s: Metadata = %#v, want %#v (never nil)", label, got.Metadata, want.Metadata)
	}
	checkTime(t, label+": CreatedAt", &got.CreatedAt, &want.CreatedAt)
	checkTime(t, label+": ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	checkTime(t, label+": RevokedAt", got.RevokedAt, want.RevokedAt)
	checkTime(t, label+": LastUsedAt", got.LastUsedAt, want.LastUsedAt)
	checkTime(t, label+": DisabledAt", got.DisabledAt, want.DisabledAt)
	if got.Environment != want.Env() {
		t.Errorf("%s: Environment = %q, want %q", label, got.Environment, want.Env())
	}
	if !slices.Equal(got.AllowedCIDRs, want.AllowedCIDRs) {
		t.Errorf("%s: AllowedCIDRs = %v, want %v", label, got.AllowedCIDRs, want.AllowedCIDRs)
	}
	if got.InactivityExpiry != want.InactivityExpiry {
		t.Errorf("%s: InactivityExpiry = %v, want %v", label, got.InactivityExpiry, want.InactivityExpiry)
	}
}

func checkTime(t *testing.T, label string, got, want *time.Time) {
	t.Helper()
	switch {
	case got == nil && want == nil:
	case got == nil:
		t.Errorf("%s = nil, want %s", label, want.Format(time.RFC3339Nano))
	case want == nil:
		t.Errorf("%s = %s, want nil", label, got.Format(time.RFC3339Nano))
	case !got.Equal(*want):
		t.Errorf("%s = %s, want %s", label, got.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
	case got.Location() != time.UTC:
		t.Errorf("%s = %s is in location %q, want UTC", label, got.Format(time.RFC3339Nano), got.Location())
	}
}

func wantErr(t *testing.T, label string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: err = %v, want %v", label, err, target)
	}
}

// wantFrozen checks that err refuses a change to a revoked key: it matches
// apikey.ErrFrozen and not apikey.ErrRevoked, which describes the caller's
// own key and would be answered as a bad credential.
func wantFrozen(t *testing.T, label string, err error) {
	t.Helper()
	if !errors.Is(err, apikey.ErrFrozen) || errors.Is(err, apikey.ErrRevoked) {
		t.Errorf("%s: err = %v, want %v (and not %v)", label, err, apikey.ErrFrozen, apikey.ErrRevoked)
	}
}

func testRoundTrip(t *testing.T, h Harness) {
	ctx := t.Context()
	clk := newClock()
	m := newManager(t, h, apikey.Config{Now: clk.Now})
	exp := base.Add(90*24*time.Hour + 123456789).In(farEast)
	k, token, err := m.Create(ctx, apikey.CreateParams{
		Name:      `Billing backend — "prod" ✓ 'quoted' \ 100%`,
		Owner:     "org_42",
		Scopes:    []string{"billing:write", "billing:read", "billing:read"},
		Metadata:  map[string]string{"env": "prod", "note": `{"json": "inside"} ünïcode`, "empty": ""},
		ExpiresAt: &exp,
	})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	want := &apikey.Key{
		ID:        k.ID,
		Prefix:    apikey.DefaultPrefix,
		Name:      `Billing backend — "prod" ✓ 'quoted' \ 100%`,
		Owner:     "org_42",
		Scopes:    []string{"billing:read", "billing:write"},
		Metadata:  map[string]string{"env": "prod", "note": `{"json": "inside"} ünïcode`, "empty": ""},
		CreatedAt: us(base),
		ExpiresAt: ptr(us(exp)),
	}
	checkKey(t, "Create", k, want)

	rec := lookup(t, h, k.ID)
	checkKey(t, "Lookup", &rec.Key, want)
	if !strings.HasPrefix(rec.Hash, "sha256$") || len(rec.Hash) != len("sha256$")+64 {
		t.Errorf("Lookup: Hash = %q, want sha256$<64 hex>", rec.Hash)
	}
	if rec.State != "" {
		t.Errorf("Lookup: State = %q, want empty (stores leave it to the Manager)", rec.State)
	}

	got, err := m.Verify(ctx, token)
	if err != nil {
		t.Fatalf("Verify of a fresh token: %v", err)
	}
	checkKey(t, "Verify", got, want)
	if got.State != apikey.StateActive {
		t.Errorf("Verify: State = %q, want %q", got.State, apikey.StateActive)
	}
	if g, err := m.Get(ctx, k.ID); err != nil {
		t.Errorf("Get: %v", err)
	} else {
		checkKey(t, "Get", g, want)
	}

	// A wrong secret with a valid checksum reaches the store and fails at
	// the hash comparison.
	wrong := WrongSecret(token)
	if _, err := m.Verify(ctx, wrong); !errors.Is(err, apikey.ErrInvalidKey) {
		t.Errorf("Verify with a wrong secret: err = %v, want %v", err, apikey.ErrInvalidKey)
	}

	// Expiry boundary: valid a microsecond before ExpiresAt, expired at it.
	clk.Set(want.ExpiresAt.Add(-time.Microsecond))
	if _, err := m.Verify(ctx, token); err != nil {
		t.Errorf("Verify 1µs before expiry: %v", err)
	}
	clk.Set(*want.ExpiresAt)
	if _, err := m.Verify(ctx, token); !errors.Is(err, apikey.ErrExpired) {
		t.Errorf("Verify at ExpiresAt: err = %v, want %v", err, apikey.ErrExpired)
	}

	// A record inserted directly keeps times given in another location.
	created := time.Date(2029, 12, 31, 23, 59, 59, 999999000, farEast)
	direct := record(testID("Direct", 1), "o", "direct", created)
	direct.CreatedAt = created
	direct.ExpiresAt = ptr(created.Add(time.Hour))
	insert(t, h, direct)
	wantDirect := direct.Key
	wantDirect.CreatedAt = created.UTC()
	wantDirect.ExpiresAt = ptr(created.Add(time.Hour).UTC())
	checkKey(t, "Lookup of a directly inserted record", &lookup(t, h, direct.ID).Key, &wantDirect)
}

func testEmptyFields(t *testing.T, h Harness) {
	clk := newClock()
	m := newManager(t, h, apikey.Config{Now: clk.Now})
	k, token := create(t, m, apikey.CreateParams{Name: "bare"})
	want := &apikey.Key{
		ID:        k.ID,
		Prefix:    apikey.DefaultPrefix,
		Name:      "bare",
		Scopes:    []string{},
		Metadata:  map[string]string{},
		CreatedAt: us(base),
	}
	checkKey(t, "Lookup of a key without owner, scopes, metadata or expiry", &lookup(t, h, k.ID).Key, want)
	if _, err := m.Verify(t.Context(), token); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func testUniqueIDs(t *testing.T, h Harness) {
	ctx := t.Context()
	id := testID("Dup", 1)
	insert(t, h, record(id, "", "first", base))
	second := record(id, "", "second", base.Add(time.Second))
	wantErr(t, "Insert of an existing id", h.Store.Insert(ctx, second, 0, nil), apikey.ErrDuplicateID)
	wantErr(t, "Insert of an existing id with a limit", h.Store.Insert(ctx, second, 10, nil), apikey.ErrDuplicateID)
	if _, err := h.Store.Revoke(ctx, id, us(base.Add(time.Minute)), nil); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	wantErr(t, "Insert of the id of a revoked key", h.Store.Insert(ctx, second, 0, nil), apikey.ErrDuplicateID)
	rec := lookup(t, h, id)
	if rec.Name != "first" || rec.RevokedAt == nil {
		t.Errorf("after duplicate inserts: Name = %q, RevokedAt = %v; want %q, revoked", rec.Name, rec.RevokedAt, "first")
	}

	m := newManager(t, h, apikey.Config{})
	const n = 200
	ids := make(map[string]bool, n)
	for i := range n {
		k, _ := create(t, m, apikey.CreateParams{Name: fmt.Sprint("key ", i)})
		if !apikey.ValidID(k.ID) {
			t.Errorf("Create returned id %q, not a valid id", k.ID)
		}
		ids[k.ID] = true
	}
	if len(ids) != n {
		t.Errorf("%d creates gave %d distinct ids, want %d", n, len(ids), n)
	}
	keys, err := h.Store.List(ctx, apikey.Query{Now: base, Limit: 1000})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(keys) != n+1 {
		t.Errorf("List after %d creates and 1 insert: %d keys, want %d", n, len(keys), n+1)
	}
}

func testNotFound(t *testing.T, h Harness) {
	ctx := t.Context()
	insert(t, h, record(testID("Exists", 1), "", "exists", base))
	const missing = "NoSuchKey000"
	_, err := h.Store.Lookup(ctx, missing)
	wantErr(t, "Store.Lookup", err, apikey.ErrNotFound)
	_, err = h.Store.Update(ctx, missing, apikey.KeyUpdate{Name: ptr("x")}, nil)
	wantErr(t, "Store.Update", err, apikey.ErrNotFound)
	_, err = h.Store.Update(ctx, missing, apikey.KeyUpdate{}, nil)
	wantErr(t, "Store.Update with an empty patch", err, apikey.ErrNotFound)
	_, err = h.Store.Revoke(ctx, missing, base, nil)
	wantErr(t, "Store.Revoke", err, apikey.ErrNotFound)
	wantErr(t, "Store.Delete", h.Store.Delete(ctx, missing, nil), apikey.ErrNotFound)
	wantErr(t, "Store.SetHash", h.Store.SetHash(ctx, missing, "", "sha256$00", nil), apikey.ErrNotFound)

	m := newManager(t, h, apikey.Config{})
	_, err = m.Get(ctx, missing)
	wantErr(t, "Manager.Get", err, apikey.ErrNotFound)
	_, err = m.Update(ctx, missing, apikey.KeyUpdate{Name: ptr("x")})
	wantErr(t, "Manager.Update", err, apikey.ErrNotFound)
	_, err = m.Revoke(ctx, missing)
	wantErr(t, "Manager.Revoke", err, apikey.ErrNotFound)
	wantErr(t, "Manager.Delete", m.Delete(ctx, missing), apikey.ErrNotFound)
	lookup(t, h, testID("Exists", 1))
}

func ids(keys []*apikey.Key) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.ID
	}
	return out
}

func testListFilters(t *testing.T, h Harness) {
	ctx := t.Context()
	now := us(base)
	type spec struct {
		id, owner, name string
		age             time.Duration // created at now - age
		expiresIn       *time.Duration
		revokedAgo      *time.Duration
	}
	d := func(x time.Duration) *time.Duration { return &x }
	specs := []spec{
		{"AliceKey0001", "alice", "Billing Backend", 10 * time.Hour, nil, nil},
		{"AliceKey0002", "alice", "reports", 9 * time.Hour, d(time.Hour), nil},
		{"AliceKey0003", "alice", "old cron", 8 * time.Hour, d(0), nil}, // expires exactly at now
		{"BobKey000001", "bob", "100% legit", 7 * time.Hour, d(-time.Hour), nil},
		{"BobKey000002", "bob", "under_score", 6 * time.Hour, nil, d(30 * time.Minute)},
		{"BobKey000003", "bob", "revoked and expired", 5 * time.Hour, d(-2 * time.Hour), d(3 * time.Hour)},
		{"SrchXyZ00001", "", "no owner", 4 * time.Hour, nil, nil},
		{"CaseKey00001", "ALICE", "upper-case owner", 3 * time.Hour, d(24 * time.Hour), nil},
	}
	for _, s := range specs {
		rec := record(s.id, s.owner, s.name, now.Add(-s.age))
		if s.expiresIn != nil {
			rec.ExpiresAt = ptr(now.Add(*s.expiresIn))
		}
		insert(t, h, rec)
		if s.revokedAgo != nil {
			if _, err := h.Store.Revoke(ctx, s.id, now.Add(-*s.revokedAgo), nil); err != nil {
				t.Fatalf("Revoke(%s): %v", s.id, err)
			}
		}
	}

	all := []string{"CaseKey00001", "SrchXyZ00001", "BobKey000003", "BobKey000002", "BobKey000001", "AliceKey0003", "AliceKey0002", "AliceKey0001"}
	tests := []struct {
		name string
		q    apikey.Query
		want []string
	}{
		{"all, newest first", apikey.Query{}, all},
		{"owner alice (exact, case-sensitive)", apikey.Query{Owner: "alice"}, []string{"AliceKey0003", "AliceKey0002", "AliceKey0001"}},
		{"owner nobody", apikey.Query{Owner: "nobody"}, []string{}},
		{"active", apikey.Query{State: apikey.StateActive}, []string{"CaseKey00001", "SrchXyZ00001", "AliceKey0002", "AliceKey0001"}},
		{"expired (expiry exactly at Now counts)", apikey.Query{State: apikey.StateExpired}, []string{"BobKey000001", "AliceKey0003"}},
		{"revoked (revocation wins over expiry)", apikey.Query{State: apikey.StateRevoked}, []string{"BobKey000003", "BobKey000002"}},
		{"active an hour earlier", apikey.Query{State: apikey.StateActive, Now: now.Add(-time.Hour)},
			[]string{"CaseKey00001", "SrchXyZ00001", "AliceKey0003", "AliceKey0002", "AliceKey0001"}},
		{"expired an hour earlier", apikey.Query{State: apikey.StateExpired, Now: now.Add(-time.Hour)}, []string{"BobKey000001"}},
		{"expired a microsecond before the boundary", apikey.Query{State: apikey.StateExpired, Now: now.Add(-time.Hour - time.Microsecond)}, []string{}},
		{"owner bob, expired", apikey.Query{Owner: "bob", State: apikey.StateExpired}, []string{"BobKey000001"}},
		{"owner alice, active", apikey.Query{Owner: "alice", State: apikey.StateActive}, []string{"AliceKey0002", "AliceKey0001"}},
		{"search name, other case", apikey.Query{Search: "BILLING"}, []string{"AliceKey0001"}},
		{"search name substring", apikey.Query{Search: "ron"}, []string{"AliceKey0003"}},
		{"search id, other case", apikey.Query{Search: "srchxyz"}, []string{"SrchXyZ00001"}},
		{"search owner, any case", apikey.Query{Search: "aLi"}, []string{"CaseKey00001", "AliceKey0003", "AliceKey0002", "AliceKey0001"}},
		{"search % is literal", apikey.Query{Search: "%"}, []string{"BobKey000001"}},
		{"search 0% is literal", apikey.Query{Search: "0% l"}, []string{"BobKey000001"}},
		{"search _ is literal", apikey.Query{Search: "_"}, []string{"BobKey000002"}},
		{"search r_s does not match reports", apikey.Query{Search: "r_p"}, []string{}},
		{"search with no match", apikey.Query{Search: "zzz"}, []string{}},
		{"search and owner and state", apikey.Query{Search: "key", Owner: "bob", State: apikey.StateRevoked}, []string{"BobKey000003", "BobKey000002"}},
		{"created from (inclusive)", apikey.Query{CreatedFrom: now.Add(-4 * time.Hour)}, []string{"CaseKey00001", "SrchXyZ00001"}},
		{"created to (exclusive)", apikey.Query{CreatedTo: now.Add(-8 * time.Hour)}, []string{"AliceKey0002", "AliceKey0001"}},
		{"created range with owner", apikey.Query{Owner: "bob", CreatedFrom: now.Add(-7 * time.Hour), CreatedTo: now.Add(-5 * time.Hour)}, []string{"BobKey000002", "BobKey000001"}},
		{"limit", apikey.Query{Limit: 3}, all[:3]},
		{"limit 1 with a filter", apikey.Query{Owner: "bob", Limit: 1}, []string{"BobKey000003"}},
		{"after a cursor", apikey.Query{After: &apikey.Cursor{CreatedAt: now.Add(-6 * time.Hour), ID: "BobKey000002"}}, all[4:]},
		{"after a cursor with a filter", apikey.Query{Owner: "alice", After: &apikey.Cursor{CreatedAt: now.Add(-9 * time.Hour), ID: "AliceKey0002"}}, []string{"AliceKey0001"}},
	}
	for _, tt := range tests {
		q := tt.q
		if q.Now.IsZero() {
			q.Now = now
		}
		if q.Limit == 0 {
			q.Limit = 100
		}
		keys, err := h.Store.List(ctx, q)
		if err != nil {
			t.Errorf("%s: List: %v", tt.name, err)
			continue
		}
		if got := ids(keys); !slices.Equal(got, tt.want) {
			t.Errorf("%s: List = %v, want %v", tt.name, got, tt.want)
		}
		for _, k := range keys {
			if q.State != "" && k.StateAt(q.Now) != q.State {
				t.Errorf("%s: key %s is %s at %s, want %s", tt.name, k.ID, k.StateAt(q.Now), q.Now, q.State)
			}
		}
	}

	// Listed keys carry every field, as Lookup does.
	keys, err := h.Store.List(ctx, apikey.Query{Now: now, Limit: 100})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	for _, k := range keys {
		checkKey(t, "List vs Lookup of "+k.ID, k, &lookup(t, h, k.ID).Key)
	}

	// The Manager's List computes the state of each key.
	clk := newClock()
	m := newManager(t, h, apikey.Config{Now: clk.Now})
	page, err := m.List(ctx, apikey.KeyFilter{State: apikey.StateExpired})
	if err != nil {
		t.Fatalf("Manager.List: %v", err)
	}
	if got := ids(page.Keys); !slices.Equal(got, []string{"BobKey000001", "AliceKey0003"}) || page.NextCursor != "" {
		t.Errorf("Manager.List(expired) = %v, cursor %q; want [BobKey000001 AliceKey0003], no cursor", got, page.NextCursor)
	}
	for _, k := range page.Keys {
		if k.State != apikey.StateExpired {
			t.Errorf("Manager.List(expired): %s has State %q", k.ID, k.State)
		}
	}
}

func testListPagination(t *testing.T, h Harness) {
	ctx := t.Context()
	const n, size = 25, 7
	now := us(base)
	var want []*apikey.Key
	for i := range n {
		// Three keys share each creation instant, and the ids are not in
		// creation order, so ties must be broken by id.
		id := testID(fmt.Sprintf("Pg%02d", (i*7)%n), i)
		rec := record(id, "pager", "page key", now.Add(-time.Duration(i/3)*time.Second))
		insert(t, h, rec)
		want = append(want, &rec.Key)
	}
	// Noise from another owner.
	for i := range 5 {
		insert(t, h, record(testID("Noise", i), "other", "noise", now.Add(-time.Duration(i)*time.Second)))
	}
	slices.SortFunc(want, func(a, b *apikey.Key) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	wantIDs := ids(want)

	// Through the Store with cursors taken from the last key of each page.
	var got []string
	q := apikey.Query{Owner: "pager", Now: now, Limit: size}
	for pages := 0; ; pages++ {
		if pages > n {
			t.Fatalf("Store.List paging did not end after %d pages; got %v", pages, got)
		}
		keys, err := h.Store.List(ctx, q)
		if err != nil {
			t.Fatalf("Store.List: %v", err)
		}
		if len(keys) > size {
			t.Fatalf("Store.List returned %d keys, limit %d", len(keys), size)
		}
		got = append(got, ids(keys)...)
		if pages == 0 {
			// A key added while paging is newer than the cursor and does not
			// show up in later pages.
			insert(t, h, record(testID("Late", 1), "pager", "late", now.Add(time.Hour)))
		}
		if len(keys) < size {
			break
		}
		last := keys[len(keys)-1]
		q.After = &apikey.Cursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	if !slices.Equal(got, wantIDs) {
		t.Errorf("Store.List pages of %d = %v, want %v", size, got, wantIDs)
	}

	// Through the Manager with opaque cursors.
	m := newManager(t, h, apikey.Config{Now: newClock().Now})
	got = nil
	var pages []int
	f := apikey.KeyFilter{Owner: "pager", Limit: size}
	for {
		page, err := m.List(ctx, f)
		if err != nil {
			t.Fatalf("Manager.List: %v", err)
		}
		got = append(got, ids(page.Keys)...)
		pages = append(pages, len(page.Keys))
		if page.NextCursor == "" || len(pages) > n {
			break
		}
		f.Cursor = page.NextCursor
	}
	wantAll := append([]string{testID("Late", 1)}, wantIDs...)
	if !slices.Equal(got, wantAll) {
		t.Errorf("Manager.List pages of %d = %v, want %v", size, got, wantAll)
	}
	if !slices.Equal(pages, []int{7, 7, 7, 5}) {
		t.Errorf("Manager.List page sizes = %v, want [7 7 7 5]", pages)
	}
}

func testUpdate(t *testing.T, h Harness) {
	ctx := t.Context()
	clk := newClock()
	m := newManager(t, h, apikey.Config{Now: clk.Now})
	k, token := create(t, m, apikey.CreateParams{
		Name: "original", Owner: "o", Scopes: []string{"a"},
		Metadata: map[string]string{"x": "1"}, ExpiresAt: ptr(base.Add(30 * 24 * time.Hour)),
	})
	other, _ := create(t, m, apikey.CreateParams{Name: "bystander", Owner: "o"})
	hash := lookup(t, h, k.ID).Hash
	want := k.Clone()
	clk.Add(time.Hour)

	newExpiry := base.Add(60*24*time.Hour + 999).In(farEast)
	steps := []struct {
		name  string
		u     apikey.KeyUpdate
		apply func(w *apikey.Key)
	}{
		{"name", apikey.KeyUpdate{Name: ptr("renamed")}, func(w *apikey.Key) { w.Name = "renamed" }},
		{"scopes replaced", apikey.KeyUpdate{Scopes: &[]string{"z:write", "a:read"}}, func(w *apikey.Key) { w.Scopes = []string{"a:read", "z:write"} }},
		{"scopes emptied", apikey.KeyUpdate{Scopes: &[]string{}}, func(w *apikey.Key) { w.Scopes = []string{} }},
		{"metadata replaced", apikey.KeyUpdate{Metadata: &map[string]string{"y": "2", "z": "3"}}, func(w *apikey.Key) { w.Metadata = map[string]string{"y": "2", "z": "3"} }},
		{"metadata emptied", apikey.KeyUpdate{Metadata: &map[string]string{}}, func(w *apikey.Key) { w.Metadata = map[string]string{} }},
		{"expiry set", apikey.KeyUpdate{ExpiresAt: &newExpiry}, func(w *apikey.Key) { w.ExpiresAt = ptr(us(newExpiry)) }},
		{"expiry cleared", apikey.KeyUpdate{ClearExpiry: true}, func(w *apikey.Key) { w.ExpiresAt = nil }},
		{"expiry set again", apikey.KeyUpdate{ExpiresAt: ptr(base.Add(2 * time.Hour))}, func(w *apikey.Key) { w.ExpiresAt = ptr(us(base.Add(2 * time.Hour))) }},
		{"allowlist set", apikey.KeyUpdate{AllowedCIDRs: &[]netip.Prefix{netip.MustParsePrefix("2001:db8::1/32"), netip.MustParsePrefix("192.0.2.7/24")}},
			func(w *apikey.Key) {
				w.AllowedCIDRs = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")}
			}},
		{"allowlist emptied", apikey.KeyUpdate{AllowedCIDRs: &[]netip.Prefix{}}, func(w *apikey.Key) { w.AllowedCIDRs = nil }},
		{"inactivity set", apikey.KeyUpdate{InactivityExpiry: ptr(90 * 24 * time.Hour)}, func(w *apikey.Key) { w.InactivityExpiry = apikey.Inactivity(90 * 24 * time.Hour) }},
		{"inactivity never", apikey.KeyUpdate{InactivityExpiry: ptr(apikey.NoInactivityExpiry)}, func(w *apikey.Key) { w.InactivityExpiry = apikey.Inactivity(apikey.NoInactivityExpiry) }},
		{"inactivity default", apikey.KeyUpdate{InactivityExpiry: ptr(time.Duration(0))}, func(w *apikey.Key) { w.InactivityExpiry = 0 }},
		{"empty patch", apikey.KeyUpdate{}, func(*apikey.Key) {}},
		{"several fields", apikey.KeyUpdate{Name: ptr("final"), Scopes: &[]string{"b"}, Metadata: &map[string]string{"k": "v"}},
			func(w *apikey.Key) {
				w.Name, w.Scopes, w.Metadata = "final", []string{"b"}, map[string]string{"k": "v"}
			}},
	}
	for _, s := range steps {
		s.apply(want)
		got, err := m.Update(ctx, k.ID, s.u)
		if err != nil {
			t.Errorf("Update %s: %v", s.name, err)
			continue
		}
		checkKey(t, "Update "+s.name+": returned key", got, want)
		rec := lookup(t, h, k.ID)
		checkKey(t, "Update "+s.name+": Lookup", &rec.Key, want)
		if rec.Hash != hash {
			t.Errorf("Update %s changed the hash", s.name)
		}
	}

	// Directly through the Store.
	want.Name = "direct"
	got, err := h.Store.Update(ctx, k.ID, apikey.KeyUpdate{Name: ptr("direct")}, nil)
	if err != nil {
		t.Fatalf("Store.Update: %v", err)
	}
	checkKey(t, "Store.Update", got, want)

	if _, err := m.Verify(ctx, token); err != nil {
		t.Errorf("Verify after updates: %v", err)
	}
	checkKey(t, "bystander after updates", &lookup(t, h, other.ID).Key, other)
}

func testUpdateRevoked(t *testing.T, h Harness) {
	ctx := t.Context()
	clk := newClock()
	m := newManager(t, h, apikey.Config{Now: clk.Now})
	k, _ := create(t, m, apikey.CreateParams{Name: "frozen", Scopes: []string{"a"}, Metadata: map[string]string{"x": "1"},
		ExpiresAt: ptr(base.Add(time.Hour))})
	clk.Add(time.Minute)
	if _, err := m.Revoke(ctx, k.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	before := lookup(t, h, k.ID)
	patches := []struct {
		name string
		u    apikey.KeyUpdate
	}{
		{"name", apikey.KeyUpdate{Name: ptr("thawed")}},
		{"scopes", apikey.KeyUpdate{Scopes: &[]string{"admin"}}},
		{"metadata", apikey.KeyUpdate{Metadata: &map[string]string{}}},
		{"expiry", apikey.KeyUpdate{ExpiresAt: ptr(base.Add(24 * time.Hour))}},
		{"clear expiry", apikey.KeyUpdate{ClearExpiry: true}},
	}
	for _, p := range patches {
		_, err := m.Update(ctx, k.ID, p.u)
		wantFrozen(t, "Manager.Update of a revoked key's "+p.name, err)
		_, err = h.Store.Update(ctx, k.ID, p.u, nil)
		wantFrozen(t, "Store.Update of a revoked key's "+p.name, err)
	}
	_, err := h.Store.Update(ctx, k.ID, apikey.KeyUpdate{}, nil)
	wantFrozen(t, "Store.Update of a revoked key with an empty patch", err)
	after := lookup(t, h, k.ID)
	checkKey(t, "revoked key after refused updates", &after.Key, &before.Key)
	if after.Hash != before.Hash {
		t.Errorf("refused updates changed the hash")
	}
}

// testFrozen checks the error that refuses a change to a revoked key: the
// store answers apikey.ErrFrozen, never apikey.ErrRevoked (which means "the
// presented key is revoked" and becomes a 401), and the Manager passes it
// through rather than reporting a store failure.
func testFrozen(t *testing.T, h Harness) {
	ctx := t.Context()
	m := newManager(t, h, apikey.Config{})
	k, _ := create(t, m, apikey.CreateParams{Name: "frozen"})
	if _, err := h.Store.Revoke(ctx, k.ID, us(base), nil); err != nil {
		t.Fatalf("Store.Revoke: %v", err)
	}
	_, err := h.Store.Update(ctx, k.ID, apikey.KeyUpdate{Name: ptr("x")}, nil)
	wantFrozen(t, "Store.Update of a revoked key", err)
	_, err = h.Store.Update(ctx, k.ID, apikey.KeyUpdate{Name: ptr("x")},
		&apikey.Event{Type: apikey.EventUpdated, At: us(base), KeyID: k.ID})
	wantFrozen(t, "Store.Update of a revoked key with an audit entry", err)
	_, err = h.Store.Update(ctx, k.ID, apikey.KeyUpdate{}, nil)
	wantFrozen(t, "Store.Update of a revoked key with an empty patch", err)

	_, err = m.Update(ctx, k.ID, apikey.KeyUpdate{Name: ptr("x")})
	wantFrozen(t, "Manager.Update of a revoked key", err)
	if errors.Is(err, apikey.ErrUnavailable) {
		t.Errorf("Manager.Update of a revoked key: err = %v, want an answer, not a store failure", err)
	}
	_, tok, err := m.Roll(ctx, k.ID, apikey.RollOptions{})
	wantFrozen(t, "Manager.Roll of a revoked key", err)
	if tok != "" {
		t.Errorf("Manager.Roll of a revoked key returned a token")
	}
}

func testRevoke(t *testing.T, h Harness) {
	ctx := t.Context()
	clk := newClock()
	m := newManager(t, h, apikey.Config{Now: clk.Now})
	k, token := create(t, m, apikey.CreateParams{Name: "to revoke", Owner: "o"})
	other, otherToken := create(t, m, apikey.CreateParams{Name: "bystander", Owner: "o"})
	first := clk.Add(time.Hour)

	r, err := m.Revoke(ctx, k.ID)
	if err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	want := k.Clone()
	want.RevokedAt = &first
	checkKey(t, "Revoke", r, want)
	if r.State != apikey.StateRevoked {
		t.Errorf("Revoke: State = %q, want %q", r.State, apikey.StateRevoked)
	}
	checkKey(t, "Lookup after Revoke", &lookup(t, h, k.ID).Key, want)

	clk.Add(time.Hour)
	r, err = m.Revoke(ctx, k.ID)
	if err != nil {
		t.Fatalf("second Revoke: %v", err)
	}
	checkKey(t, "second Revoke", r, want)
	r, err = h.Store.Revoke(ctx, k.ID, us(base.Add(5*time.Hour)), nil)
	if err != nil {
		t.Fatalf("Store.Revoke of a revoked key: %v", err)
	}
	checkKey(t, "Store.Revoke of a revoked key", r, want)
	r, err = h.Store.Revoke(ctx, k.ID, us(base.Add(-5*time.Hour)), nil)
	if err != nil {
		t.Fatalf("Store.Revoke of a revoked key with an earlier time: %v", err)
	}
	checkKey(t, "Store.Revoke of a revoked key with an earlier time", r, want)
	checkKey(t, "Lookup after repeated revokes", &lookup(t, h, k.ID).Key, want)

	_, err = m.Verify(ctx, token)
	wantErr(t, "Verify of a revoked key", err, apikey.ErrRevoked)
	_, err = m.Update(ctx, k.ID, apikey.KeyUpdate{Name: ptr("x")})
	wantFrozen(t, "Update of a revoked key", err)

	// Revoking one key leaves the others alone.
	checkKey(t, "bystander", &lookup(t, h, other.ID).Key, other)
	if _, err := m.Verify(ctx, otherToken); err != nil {
		t.Errorf("Verify of the bystander: %v", err)
	}

	// An expired key can still be revoked, and then reads as revoked.
	e, _ := create(t, m, apikey.CreateParams{Name: "expiring", ExpiresAt: ptr(clk.Now().Add(time.Minute))})
	at := clk.Add(time.Hour)
	r, err = m.Revoke(ctx, e.ID)
	if err != nil {
		t.Fatalf("Revoke of an expired key: %v", err)
	}
	if r.State != apikey.StateRevoked || r.RevokedAt == nil || !r.RevokedAt.Equal(at) {
		t.Errorf("Revoke of an expired key: State %q, RevokedAt %v; want revoked at %s", r.State, r.RevokedAt, at)
	}
}

func testRevocationIrreversible(t *testing.T, h Harness) {
	needExec(t, h)
	ctx := t.Context()
	clk := newClock()
	m := newManager(t, h, apikey.Config{Now: clk.Now})
	k, token := create(t, m, apikey.CreateParams{Name: "revoked"})
	other, _ := create(t, m, apikey.CreateParams{Name: "active"})
	clk.Add(time.Minute)
	if _, err := m.Revoke(ctx, k.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	before := lookup(t, h, k.ID)

	// Sanity: Exec reaches the same database, so the refusals below mean
	// something.
	if err := h.Exec(ctx, "UPDATE apikey_keys SET name = 'renamed by sql' WHERE id = '"+other.ID+"'"); err != nil {
		t.Fatalf("Exec of a harmless update: %v", err)
	}
	if got := lookup(t, h, other.ID).Name; got != "renamed by sql" {
		t.Fatalf("after a raw UPDATE through Exec, Name = %q, want %q: Exec does not reach the store's database", got, "renamed by sql")
	}

	for _, stmt := range []string{
		"UPDATE apikey_keys SET revoked_at = NULL WHERE id = '" + k.ID + "'",
		"UPDATE apikey_keys SET revoked_at = created_at WHERE id = '" + k.ID + "'",
		"UPDATE apikey_keys SET revoked_at = NULL",
	} {
		if err := h.Exec(ctx, stmt); err == nil {
			t.Errorf("Exec(%q) succeeded, want the database to refuse it", stmt)
		}
	}
	after := lookup(t, h, k.ID)
	checkKey(t, "revoked key after raw SQL", &after.Key, &before.Key)
	if _, err := m.Verify(ctx, token); !errors.Is(err, apikey.ErrRevoked) {
		t.Errorf("Verify after raw SQL: err = %v, want %v", err, apikey.ErrRevoked)
	}
}

func testOwnerLimit(t *testing.T, h Harness) {
	ctx := t.Context()
	clk := newClock()
	m := newManager(t, h, apikey.Config{Now: clk.Now, MaxKeysPerOwner: 3})
	var acme []*apikey.Key
	for i := range 3 {
		k, _ := create(t, m, apikey.CreateParams{Name: fmt.Sprint("acme ", i), Owner: "acme"})
		acme = append(acme, k)
	}
	_, _, err := m.Create(ctx, apikey.CreateParams{Name: "one too many", Owner: "acme"})
	wantErr(t, "fourth Create for acme", err, apikey.ErrTooManyKeys)

	// Revoked keys do not count; expired ones do.
	if _, err := m.Revoke(ctx, acme[0].ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	create(t, m, apikey.CreateParams{Name: "replacement", Owner: "acme"})
	_, _, err = m.Create(ctx, apikey.CreateParams{Name: "one too many again", Owner: "acme"})
	wantErr(t, "Create for acme after the replacement", err, apikey.ErrTooManyKeys)

	create(t, m, apikey.CreateParams{Name: "soon expired", Owner: "expiring", ExpiresAt: ptr(base.Add(time.Minute))})
	clk.Add(time.Hour)
	for i := range 2 {
		create(t, m, apikey.CreateParams{Name: fmt.Sprint("expiring ", i), Owner: "expiring"})
	}
	_, _, err = m.Create(ctx, apikey.CreateParams{Name: "over", Owner: "expiring"})
	wantErr(t, "Create when an expired key fills the limit", err, apikey.ErrTooManyKeys)

	// Other owners are unaffected, and keys without an owner are unlimited.
	create(t, m, apikey.CreateParams{Name: "globex", Owner: "globex"})
	for i := range 5 {
		create(t, m, apikey.CreateParams{Name: fmt.Sprint("ownerless ", i)})
	}

	// The Store applies the limit it is given, and a refused Insert stores
	// nothing.
	rec := record(testID("Limit", 1), "acme", "direct", base)
	wantErr(t, "Store.Insert over the limit", h.Store.Insert(ctx, rec, 3, nil), apikey.ErrTooManyKeys)
	if _, err := h.Store.Lookup(ctx, rec.ID); !errors.Is(err, apikey.ErrNotFound) {
		t.Errorf("Lookup of a refused insert: err = %v, want %v", err, apikey.ErrNotFound)
	}
	if err := h.Store.Insert(ctx, rec, 4, nil); err != nil {
		t.Errorf("Store.Insert under a higher limit: %v", err)
	}
	if err := h.Store.Insert(ctx, record(testID("Limit", 2), "acme", "direct", base), 0, nil); err != nil {
		t.Errorf("Store.Insert with limit 0 (unlimited): %v", err)
	}
}

func testOwnerLimitConcurrent(t *testing.T, h Harness) {
	ctx := t.Context()
	const limit, workers = 5, 20
	m := newManager(t, h, apikey.Config{MaxKeysPerOwner: limit})
	owners := []string{"acme", "globex"}
	type result struct {
		owner string
		err   error
	}
	results := make(chan result, workers*len(owners))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, owner := range owners {
		for i := range workers {
			wg.Go(func() {
				<-start
				_, _, err := m.Create(ctx, apikey.CreateParams{Name: fmt.Sprint("concurrent ", i), Owner: owner})
				results <- result{owner, err}
			})
		}
	}
	close(start)
	wg.Wait()
	close(results)
	created := map[string]int{}
	for r := range results {
		switch {
		case r.err == nil:
			created[r.owner]++
		case errors.Is(r.err, apikey.ErrTooManyKeys):
		default:
			t.Errorf("concurrent Create for %s: %v, want success or %v", r.owner, r.err, apikey.ErrTooManyKeys)
		}
	}
	for _, owner := range owners {
		if created[owner] != limit {
			t.Errorf("%d concurrent Creates for %s with MaxKeysPerOwner %d: %d succeeded, want %d", workers, owner, limit, created[owner], limit)
		}
		keys, err := h.Store.List(ctx, apikey.Query{Owner: owner, Now: time.Now(), Limit: 100})
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if len(keys) != limit {
			t.Errorf("%s holds %d keys after concurrent Creates, want %d", owner, len(keys), limit)
		}
	}

	// After revoking one key, exactly one of several concurrent Creates wins.
	keys, err := h.Store.List(ctx, apikey.Query{Owner: "acme", Now: time.Now(), Limit: 1})
	if err != nil || len(keys) != 1 {
		t.Fatalf("List: %v, %d keys", err, len(keys))
	}
	if _, err := m.Revoke(ctx, keys[0].ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	var mu sync.Mutex
	won := 0
	for i := range 8 {
		wg.Go(func() {
			_, _, err := m.Create(ctx, apikey.CreateParams{Name: fmt.Sprint("after revoke ", i), Owner: "acme"})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case !errors.Is(err, apikey.ErrTooManyKeys):
				t.Errorf("Create after revoke: %v", err)
			}
		})
	}
	wg.Wait()
	if won != 1 {
		t.Errorf("after revoking one of %d keys, %d concurrent Creates succeeded, want 1", limit, won)
	}

	// Keys without an owner are never limited, even concurrently.
	var unowned sync.WaitGroup
	errs := make(chan error, 2*limit)
	for i := range 2 * limit {
		unowned.Go(func() {
			_, _, err := m.Create(ctx, apikey.CreateParams{Name: fmt.Sprint("ownerless ", i)})
			errs <- err
		})
	}
	unowned.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Create without owner: %v", err)
		}
	}
}

func testDelete(t *testing.T, h Harness) {
	ctx := t.Context()
	clk := newClock()
	m := newManager(t, h, apikey.Config{Now: clk.Now})
	k, token := create(t, m, apikey.CreateParams{Name: "doomed"})
	other, otherToken := create(t, m, apikey.CreateParams{Name: "survivor"})
	if err := m.Delete(ctx, k.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err := h.Store.Lookup(ctx, k.ID)
	wantErr(t, "Lookup after Delete", err, apikey.ErrNotFound)
	_, err = m.Get(ctx, k.ID)
	wantErr(t, "Get after Delete", err, apikey.ErrNotFound)
	_, err = m.Verify(ctx, token)
	wantErr(t, "Verify of a deleted key", err, apikey.ErrInvalidKey)
	wantErr(t, "second Delete", m.Delete(ctx, k.ID), apikey.ErrNotFound)
	wantErr(t, "Store.Delete of a deleted key", h.Store.Delete(ctx, k.ID, nil), apikey.ErrNotFound)

	checkKey(t, "survivor", &lookup(t, h, other.ID).Key, other)
	if _, err := m.Verify(ctx, otherToken); err != nil {
		t.Errorf("Verify of the survivor: %v", err)
	}

	// A revoked key can be deleted.
	if _, err := m.Revoke(ctx, other.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if err := h.Store.Delete(ctx, other.ID, nil); err != nil {
		t.Fatalf("Delete of a revoked key: %v", err)
	}
	_, err = h.Store.Lookup(ctx, other.ID)
	wantErr(t, "Lookup after deleting a revoked key", err, apikey.ErrNotFound)
	_, err = m.Verify(ctx, otherToken)
	wantErr(t, "Verify of a deleted revoked key", err, apikey.ErrInvalidKey)
}

func testSetHash(t *testing.T, h Harness) {
	ctx := t.Context()
	clk := newClock()
	m := newManager(t, h, apikey.Config{Now: clk.Now})
	k, token := create(t, m, apikey.CreateParams{Name: "rehash", Scopes: []string{"a"}})
	before := lookup(t, h, k.ID)
	bogus := "sha256$" + strings.Repeat("0", 64)
	if err := h.Store.SetHash(ctx, k.ID, "", bogus, nil); err != nil {
		t.Fatalf("SetHash: %v", err)
	}
	after := lookup(t, h, k.ID)
	if after.Hash != bogus {
		t.Errorf("Lookup after SetHash: Hash = %q, want %q", after.Hash, bogus)
	}
	checkKey(t, "Lookup after SetHash", &after.Key, &before.Key)
	_, err := m.Verify(ctx, token)
	wantErr(t, "Verify against a replaced hash", err, apikey.ErrInvalidKey)
	if err := h.Store.SetHash(ctx, k.ID, "", before.Hash, nil); err != nil {
		t.Fatalf("SetHash back: %v", err)
	}
	if _, err := m.Verify(ctx, token); err != nil {
		t.Errorf("Verify after restoring the hash: %v", err)
	}

	// A pepper rotation rehashes on the next verification, through SetHash.
	v1 := apikey.Pepper{Version: 1, Secret: []byte("first pepper, 32 bytes long.....")}
	v2 := apikey.Pepper{Version: 2, Secret: []byte("second pepper, 32 bytes long....")}
	old := newManager(t, h, apikey.Config{Now: clk.Now, Peppers: []apikey.Pepper{v1}})
	pk, ptoken := create(t, old, apikey.CreateParams{Name: "peppered"})
	if got := lookup(t, h, pk.ID).Hash; !strings.HasPrefix(got, "hmac-sha256$1$") {
		t.Fatalf("Hash with pepper 1 = %q, want hmac-sha256$1$...", got)
	}
	rotated := newManager(t, h, apikey.Config{Now: clk.Now, Peppers: []apikey.Pepper{v2, v1}})
	if _, err := rotated.Verify(ctx, ptoken); err != nil {
		t.Fatalf("Verify after rotation: %v", err)
	}
	if got := lookup(t, h, pk.ID).Hash; !strings.HasPrefix(got, "hmac-sha256$2$") {
		t.Errorf("Hash after verification with a rotated pepper = %q, want hmac-sha256$2$...", got)
	}
	if _, err := rotated.Verify(ctx, ptoken); err != nil {
		t.Errorf("Verify after rehash: %v", err)
	}
}

func testPlaintextNeverStored(t *testing.T, h Harness) {
	ctx := t.Context()
	clk := newClock()
	m := newManager(t, h, apikey.Config{Now: clk.Now, MaxKeysPerOwner: 10})
	var keys []*apikey.Key
	var tokens []string
	for i := range 5 {
		k, token := create(t, m, apikey.CreateParams{Name: fmt.Sprint("secret keeper ", i), Owner: "vault",
			Scopes: []string{"s"}, Metadata: map[string]string{"n": fmt.Sprint(i)}})
		keys = append(keys, k)
		tokens = append(tokens, token)
	}
	// Exercise every write path so that old versions of rows are on disk.
	for _, token := range tokens {
		if _, err := m.Verify(ctx, token); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	}
	if _, err := m.Update(ctx, keys[1].ID, apikey.KeyUpdate{Name: ptr("renamed")}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if _, err := m.Revoke(ctx, keys[2].ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if err := m.Delete(ctx, keys[3].ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	dump, err := h.Dump(ctx)
	if err != nil {
		t.Fatalf("Dump: %v", err)
	}
	for i, token := range tokens {
		secret := SecretOf(token)
		if bytes.Contains(dump, []byte(token)) {
			t.Errorf("the stored bytes contain the whole token of key %d", i)
		}
		if bytes.Contains(dump, []byte(secret)) {
			t.Errorf("the stored bytes contain the secret of key %d", i)
		}
		if bytes.Contains(dump, []byte(secret[:len(secret)/2])) {
			t.Errorf("the stored bytes contain the first half of the secret of key %d", i)
		}
		if bytes.Contains(dump, []byte(secret[len(secret)/2:])) {
			t.Errorf("the stored bytes contain the second half of the secret of key %d", i)
		}
	}
	for _, i := range []int{0, 1, 2, 4} {
		if !bytes.Contains(dump, []byte(keys[i].ID)) {
			t.Errorf("the stored bytes (%d) do not contain the id %s of key %d: Dump does not return what the store keeps", len(dump), keys[i].ID, i)
		}
	}
}

func testCancelledContext(t *testing.T, h Harness) {
	clk := newClock()
	m := newManager(t, h, apikey.Config{Now: clk.Now})
	k, token := create(t, m, apikey.CreateParams{Name: "untouched", Owner: "o"})
	before := lookup(t, h, k.ID)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	newRec := record(testID("Cancel", 1), "o", "never stored", base)
	calls := []struct {
		name string
		call func() error
	}{
		{"Insert", func() error { return h.Store.Insert(ctx, newRec, 0, nil) }},
		{"Insert with limit", func() error { return h.Store.Insert(ctx, newRec, 10, nil) }},
		{"Lookup", func() error { _, err := h.Store.Lookup(ctx, k.ID); return err }},
		{"List", func() error {
			_, err := h.Store.List(ctx, apikey.Query{Now: base, Limit: 10})
			return err
		}},
		{"Update", func() error {
			_, err := h.Store.Update(ctx, k.ID, apikey.KeyUpdate{Name: ptr("changed")}, nil)
			return err
		}},
		{"Revoke", func() error { _, err := h.Store.Revoke(ctx, k.ID, us(base), nil); return err }},
		{"SetHash", func() error { return h.Store.SetHash(ctx, k.ID, "", "sha256$00", nil) }},
		{"Delete", func() error { return h.Store.Delete(ctx, k.ID, nil) }},
	}
	for _, c := range calls {
		err := c.call()
		switch {
		case err == nil:
			t.Errorf("Store.%s with a cancelled context succeeded, want an error", c.name)
		case errors.Is(err, apikey.ErrNotFound), errors.Is(err, apikey.ErrFrozen), errors.Is(err, apikey.ErrRevoked),
			errors.Is(err, apikey.ErrTooManyKeys), errors.Is(err, apikey.ErrDuplicateID):
			t.Errorf("Store.%s with a cancelled context: err = %v, want a store failure, not an answer", c.name, err)
		}
	}
	if _, err := m.Verify(ctx, token); !errors.Is(err, apikey.ErrUnavailable) {
		t.Errorf("Verify with a cancelled context: err = %v, want %v", err, apikey.ErrUnavailable)
	}

	after := lookup(t, h, k.ID)
	checkKey(t, "key after calls with a cancelled context", &after.Key, &before.Key)
	if after.Hash != before.Hash {
		t.Errorf("a call with a cancelled context changed the hash")
	}
	if _, err := h.Store.Lookup(t.Context(), newRec.ID); !errors.Is(err, apikey.ErrNotFound) {
		t.Errorf("Lookup of a record inserted with a cancelled context: err = %v, want %v", err, apikey.ErrNotFound)
	}
}
