package apikey_test

import (
	"bytes"
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/memstore"
)

// drfSecret is a 32-character secret as DRF API Key makes them.
const drfSecret = "Vrbpu3AMmt3RRgBWfd3pGwqdgpKQa7zq"

// sha512Digest is DRF API Key's digest of key.
func sha512Digest(key string) string {
	sum := sha512.Sum512([]byte(key))
	return "sha512$$" + hex.EncodeToString(sum[:])
}

// djangoPBKDF2 is Django's PBKDF2 hasher output for key, with few
// iterations so that tests stay fast.
func djangoPBKDF2(t testing.TB, alg string, h func() hash.Hash, key, salt string, iter int) string {
	t.Helper()
	dk, err := pbkdf2.Key(h, key, []byte(salt), iter, h().Size())
	if err != nil {
		t.Fatal(err)
	}
	return alg + "$" + strconv.Itoa(iter) + "$" + salt + "$" + base64.StdEncoding.EncodeToString(dk)
}

func TestDRFKeyID(t *testing.T) {
	tests := []struct {
		prefix, id string
		ok         bool
	}{
		{"AbCd1234", "drf8AbCd1234", true},
		{"xyz", "drf3xyz00000", true},
		{"a", "drf1a0000000", true},
		{"xyz0", "drf4xyz00000", true}, // distinct from "xyz" by its length digit
		{"", "", false},
		{"AbCd12345", "", false},
		{"AbCd-123", "", false},
		{"AbCd.123", "", false},
	}
	for _, tt := range tests {
		id, ok := apikey.DRFKeyID(tt.prefix)
		if id != tt.id || ok != tt.ok {
			t.Errorf("DRFKeyID(%q) = %q, %v; want %q, %v", tt.prefix, id, ok, tt.id, tt.ok)
		}
		if ok && !apikey.ValidID(id) {
			t.Errorf("DRFKeyID(%q) = %q is not a valid key id", tt.prefix, id)
		}
	}
}

func TestParseDRFToken(t *testing.T) {
	tok, err := apikey.ParseDRFToken("AbCd1234." + drfSecret)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Prefix != apikey.DRFIssuer || tok.ID != "drf8AbCd1234" {
		t.Errorf("ParseDRFToken = %+v, want prefix %q and id drf8AbCd1234", tok, apikey.DRFIssuer)
	}
	if got := tok.String(); got != "AbCd1234.…" || strings.Contains(got, drfSecret) {
		t.Errorf("String() = %q, want AbCd1234.…", got)
	}
	for _, bad := range []string{
		"", "AbCd1234", "AbCd1234.", ".secret", "AbCd12345." + drfSecret, "AbCd-234." + drfSecret,
		"AbCd1234." + drfSecret + ".x", "AbCd1234." + drfSecret + " ", "AbCd1234." + strings.Repeat("a", 129),
		"AbCd1234." + strings.Repeat("a", 300), "ak_" + drfSecret,
	} {
		if _, err := apikey.ParseDRFToken(bad); !errors.Is(err, apikey.ErrInvalidKey) {
			t.Errorf("ParseDRFToken(%q) error = %v, want ErrInvalidKey", bad, err)
		}
	}
}

// prefixReader yields first, then crypto/rand.
type prefixReader struct{ first []byte }

func (r *prefixReader) Read(p []byte) (int, error) {
	if len(r.first) > 0 {
		n := copy(p, r.first)
		r.first = r.first[n:]
		return n, nil
	}
	return rand.Read(p)
}

// TestNativeIDsNeverReserved draws "drf..." as the first id: Create must
// draw again, since ids that start with "drf" are those of imported keys.
func TestNativeIDsNeverReserved(t *testing.T) {
	// randomBase62 reads 18 bytes for a 12-character id; byte b < 248
	// gives base62[b%62], where 'd', 'r', 'f' are 39, 53 and 41.
	first := bytes.Repeat([]byte{1}, 18)
	first[0], first[1], first[2] = 39, 53, 41
	m := mustManager(t, openStore(t), apikey.Config{Rand: &prefixReader{first: first}})
	k, token, err := m.Create(context.Background(), apikey.CreateParams{Name: "native"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(k.ID, "drf") || k.ID == "drf111111111" {
		t.Fatalf("Create issued id %q, which is reserved for imported keys", k.ID)
	}
	if _, err := m.Verify(context.Background(), token); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

// importDRF imports one DRF API Key row into st and returns the key.
func importDRF(t *testing.T, m *apikey.Manager, k apikey.DRFKey) *apikey.Record {
	t.Helper()
	rec, err := m.NewDRFRecord(k)
	if err != nil {
		t.Fatalf("NewDRFRecord: %v", err)
	}
	done, err := m.Import(context.Background(), []*apikey.Record{rec})
	if err != nil || len(done) != 1 || !done[0] {
		t.Fatalf("Import = %v, %v; want [true]", done, err)
	}
	return rec
}

func TestImportedSHA512KeyVerifies(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	m := mustManager(t, st, apikey.Config{Cache: &mapCache{m: map[string]*apikey.CacheEntry{}}})
	key := "AbCd1234." + drfSecret
	created := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	rec := importDRF(t, m, apikey.DRFKey{Prefix: "AbCd1234", HashedKey: sha512Digest(key), Name: "billing", Created: created})

	for range 2 { // store, then cache
		k, err := m.Verify(ctx, key)
		if err != nil {
			t.Fatalf("Verify of the DRF key: %v", err)
		}
		if k.ID != "drf8AbCd1234" || k.Prefix != apikey.DRFIssuer || k.Name != "billing" || !k.CreatedAt.Equal(created.Truncate(time.Microsecond)) {
			t.Errorf("Verify = %+v", k)
		}
	}
	got, err := st.Lookup(ctx, rec.ID)
	if err != nil || got.Hash != sha512Digest(key) {
		t.Errorf("stored hash after verification = %q, %v; want the sha512$$ digest kept as it is", got.Hash, err)
	}
	for _, bad := range []string{
		"AbCd1234." + drfSecret[:31] + "x",     // wrong secret
		"AbCd1234." + drfSecret + "x",          // longer
		"AbCd1235." + drfSecret,                // another prefix: unknown
		"abcd1234." + drfSecret,                // prefixes are case-sensitive
		"ak_drf8AbCd1234_" + drfSecret + "000", // native shape, bad checksum
	} {
		if _, err := m.Verify(ctx, bad); !errors.Is(err, apikey.ErrInvalidKey) {
			t.Errorf("Verify(%q) error = %v, want ErrInvalidKey", bad, err)
		}
	}
}

// TestDottedFormOnlyForImportedKeys plants records whose digest matches a
// token of the other form: the issuer prefix alone must refuse them.
func TestDottedFormOnlyForImportedKeys(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	m := mustManager(t, st, apikey.Config{})
	now := time.Now().UTC()

	// A native key (prefix "ak") under a drf id, whose digest is that of
	// the dotted token: the dotted form must not reach it.
	dotted := "Zz991234." + drfSecret
	sum := sha256.Sum256([]byte(dotted))
	if err := st.Insert(ctx, &apikey.Record{Key: apikey.Key{ID: "drf8Zz991234", Prefix: "ak", Name: "native", CreatedAt: now},
		Hash: "sha256$" + hex.EncodeToString(sum[:])}, 0, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Verify(ctx, dotted); !errors.Is(err, apikey.ErrInvalidKey) {
		t.Errorf("dotted token of a native key: err = %v, want ErrInvalidKey", err)
	}

	// An imported key whose digest is that of a native token of its id:
	// the native form must not reach it.
	native, err := apikey.FormatToken("ak", "drf8Yy991234", drfSecret)
	if err != nil {
		t.Fatal(err)
	}
	sum = sha256.Sum256([]byte(native))
	if err := st.Insert(ctx, &apikey.Record{Key: apikey.Key{ID: "drf8Yy991234", Prefix: apikey.DRFIssuer, Name: "imported", CreatedAt: now},
		Hash: "sha256$" + hex.EncodeToString(sum[:])}, 0, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Verify(ctx, native); !errors.Is(err, apikey.ErrInvalidKey) {
		t.Errorf("native token of an imported key: err = %v, want ErrInvalidKey", err)
	}

	// And a dotted token whose prefix maps to a native key's id never
	// matches it: native ids never start with drf.
	k, _, err := m.Create(ctx, apikey.CreateParams{Name: "n"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Verify(ctx, k.ID[:8]+"."+drfSecret); !errors.Is(err, apikey.ErrInvalidKey) {
		t.Errorf("dotted token made of a native id: err = %v, want ErrInvalidKey", err)
	}
}

func TestImportedLegacyKeysUpgrade(t *testing.T) {
	for _, tc := range []struct {
		alg string
		h   func() hash.Hash
	}{{"pbkdf2_sha256", sha256.New}, {"pbkdf2_sha1", sha1.New}} {
		t.Run(tc.alg, func(t *testing.T) {
			ctx := context.Background()
			st := openStore(t)
			pepper := apikey.Pepper{Version: 2, Secret: []byte("a pepper of 16+ bytes")}
			m := mustManager(t, st, apikey.Config{Peppers: []apikey.Pepper{pepper}, Cache: &mapCache{m: map[string]*apikey.CacheEntry{}}})
			key := "Lg0Legcy." + drfSecret
			legacy := djangoPBKDF2(t, tc.alg, tc.h, key, "4rTdKwUBVPQv684tfOvX1z", 1000)
			rec := importDRF(t, m, apikey.DRFKey{Prefix: "Lg0Legcy", HashedKey: legacy, Name: "legacy", Created: time.Now()})

			// A wrong secret never rewrites the digest.
			if _, err := m.Verify(ctx, "Lg0Legcy."+drfSecret[:31]+"Q"); !errors.Is(err, apikey.ErrInvalidKey) {
				t.Fatalf("wrong secret: %v", err)
			}
			if got, _ := st.Lookup(ctx, rec.ID); got.Hash != legacy {
				t.Fatalf("a failed check changed the digest to %q", got.Hash)
			}
			if _, err := m.Verify(ctx, key); err != nil {
				t.Fatalf("first use: %v", err)
			}
			got, err := st.Lookup(ctx, rec.ID)
			if err != nil || !strings.HasPrefix(got.Hash, "hmac-sha256$2$") {
				t.Fatalf("digest after the first use = %q, %v; want the current form hmac-sha256$2$...", got.Hash, err)
			}
			if _, err := m.Verify(ctx, key); err != nil {
				t.Errorf("after the upgrade: %v", err)
			}
			if _, err := m.Verify(ctx, "Lg0Legcy."+drfSecret[:31]+"Q"); !errors.Is(err, apikey.ErrInvalidKey) {
				t.Errorf("wrong secret after the upgrade: %v", err)
			}
			evs, err := m.Events(ctx, apikey.EventFilter{KeyID: rec.ID})
			if err != nil || len(evs.Events) != 1 || evs.Events[0].Type != apikey.EventImported {
				t.Errorf("audit log of the key = %+v, %v; want one key.imported entry (an upgrade records nothing)", evs, err)
			}
		})
	}
}

// TestImportedLegacyKeyRefusedNotUpgraded checks that a legacy digest is
// kept when the key is right but revoked or expired.
func TestImportedLegacyKeyRefusedNotUpgraded(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	m := mustManager(t, st, apikey.Config{})
	past := time.Now().Add(-time.Hour)
	for _, tc := range []struct {
		prefix string
		row    apikey.DRFKey
		want   error
	}{
		{"Revoked1", apikey.DRFKey{Revoked: true}, apikey.ErrRevoked},
		{"Expired1", apikey.DRFKey{ExpiryDate: &past}, apikey.ErrExpired},
	} {
		key := tc.prefix + "." + drfSecret
		row := tc.row
		row.Prefix, row.Name, row.Created = tc.prefix, tc.prefix, time.Now().Add(-48*time.Hour)
		row.HashedKey = djangoPBKDF2(t, "pbkdf2_sha256", sha256.New, key, "salt", 10)
		rec := importDRF(t, m, row)
		if _, err := m.Verify(ctx, key); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.prefix, err, tc.want)
		}
		if got, _ := st.Lookup(ctx, rec.ID); got.Hash != row.HashedKey {
			t.Errorf("%s: digest changed to %q", tc.prefix, got.Hash)
		}
	}
}

func TestImportRevokedAndIdempotent(t *testing.T) {
	ctx := apikey.WithActor(context.Background(), "cli")
	st := openStore(t)
	m := mustManager(t, st, apikey.Config{})
	var recs []*apikey.Record
	for i, revoked := range []bool{false, true, false} {
		prefix := "Idem000" + strconv.Itoa(i)
		rec, err := m.NewDRFRecord(apikey.DRFKey{Prefix: prefix, HashedKey: sha512Digest(prefix + "." + drfSecret),
			Name: prefix, Created: time.Now(), Revoked: revoked, Owner: "org-1", Metadata: map[string]string{"organization_id": "7"}})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	done, err := m.Import(ctx, recs)
	if err != nil || !equalBools(done, []bool{true, true, true}) {
		t.Fatalf("Import = %v, %v", done, err)
	}
	if _, err := m.Verify(ctx, "Idem0001."+drfSecret); !errors.Is(err, apikey.ErrRevoked) {
		t.Errorf("revoked DRF key: err = %v, want ErrRevoked", err)
	}
	k, err := m.Verify(ctx, "Idem0000."+drfSecret)
	if err != nil || k.Owner != "org-1" || k.Metadata["organization_id"] != "7" {
		t.Errorf("Verify = %+v, %v; want owner org-1 and the metadata", k, err)
	}
	evs, err := m.Events(ctx, apikey.EventFilter{KeyID: recs[1].ID})
	if err != nil || len(evs.Events) != 2 || evs.Events[0].Type != apikey.EventRevoked || evs.Events[1].Type != apikey.EventImported ||
		evs.Events[0].Actor != "cli" || evs.Events[1].Changes["revoked_at"].After != nil {
		t.Errorf("audit log of the revoked key = %+v, %v; want key.imported (unrevoked), then key.revoked, by cli", evs, err)
	}

	// Again: nothing is imported twice, nor revived after a deletion.
	if err := m.Delete(ctx, recs[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := m.Delete(ctx, recs[1].ID); err != nil {
		t.Fatal(err)
	}
	again := make([]*apikey.Record, len(recs))
	for i, r := range recs {
		c := *r
		c.RevokedAt = nil
		again[i] = &c
	}
	done, err = m.Import(ctx, again)
	if err != nil || !equalBools(done, []bool{false, false, false}) {
		t.Fatalf("Import again = %v, %v; want nothing imported", done, err)
	}
	for _, p := range []string{"Idem0000", "Idem0001"} {
		if _, err := m.Verify(ctx, p+"."+drfSecret); !errors.Is(err, apikey.ErrInvalidKey) {
			t.Errorf("deleted key %s after a second import: err = %v, want ErrInvalidKey", p, err)
		}
	}
	taken, err := st.Taken(ctx, []string{recs[0].ID, recs[2].ID, "drf8Fresh123"})
	if err != nil || !equalBools(taken, []bool{true, true, false}) {
		t.Errorf("Taken = %v, %v", taken, err)
	}
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestNewDRFRecordRules(t *testing.T) {
	m := mustManager(t, openStore(t), apikey.Config{})
	good := apikey.DRFKey{Prefix: "AbCd1234", HashedKey: sha512Digest("AbCd1234." + drfSecret), Name: "n", Created: time.Now()}
	tests := []struct {
		name  string
		edit  func(*apikey.DRFKey)
		field string
	}{
		{"bad prefix", func(k *apikey.DRFKey) { k.Prefix = "AbCd-234" }, "prefix"},
		{"long prefix", func(k *apikey.DRFKey) { k.Prefix = "AbCd12345" }, "prefix"},
		{"unknown algorithm", func(k *apikey.DRFKey) { k.HashedKey = "md5$salt$abc" }, "hashed_key"},
		{"short sha512", func(k *apikey.DRFKey) { k.HashedKey = k.HashedKey[:100] }, "hashed_key"},
		{"empty hash", func(k *apikey.DRFKey) { k.HashedKey = "" }, "hashed_key"},
		{"no created", func(k *apikey.DRFKey) { k.Created = time.Time{} }, "created"},
		{"bad owner", func(k *apikey.DRFKey) { k.Owner = "a\x00b" }, "owner"},
		{"bad metadata name", func(k *apikey.DRFKey) { k.Metadata = map[string]string{"a b": "c"} }, "metadata"},
		{"bad scope", func(k *apikey.DRFKey) { k.Scopes = []string{"a b"} }, "scopes"},
	}
	for _, tt := range tests {
		k := good
		tt.edit(&k)
		_, err := m.NewDRFRecord(k)
		var ve *apikey.ValidationError
		if !errors.As(err, &ve) || ve.Field != tt.field {
			t.Errorf("%s: err = %v, want a validation error of %q", tt.name, err, tt.field)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"ok name", "ok name"}, {" a\tb\n", "a b"}, {"", "DRF API key AbCd1234"}, {"\x01", "DRF API key AbCd1234"},
	} {
		k := good
		k.Name = tc.in
		rec, err := m.NewDRFRecord(k)
		if err != nil || rec.Name != tc.want {
			t.Errorf("name %q: %v, %v; want %q", tc.in, rec, err, tc.want)
		}
	}
	past := time.Now().Add(-time.Hour)
	k := good
	k.ExpiryDate, k.Revoked = &past, true
	rec, err := m.NewDRFRecord(k)
	if err != nil || rec.ExpiresAt == nil || !rec.ExpiresAt.Equal(past.UTC().Truncate(time.Microsecond)) || rec.RevokedAt == nil {
		t.Errorf("expired and revoked row: %+v, %v; want both kept", rec, err)
	}
}

func TestImportRefusesOtherRecords(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	m := mustManager(t, st, apikey.Config{})
	native, _, err := m.NewRecord(apikey.CreateParams{Name: "native"})
	if err != nil {
		t.Fatal(err)
	}
	ok, err := m.NewDRFRecord(apikey.DRFKey{Prefix: "Okay1234", HashedKey: sha512Digest("x"), Name: "n", Created: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	var ve *apikey.ValidationError
	if _, err := m.Import(ctx, []*apikey.Record{ok, native}); !errors.As(err, &ve) {
		t.Errorf("Import of a native record: err = %v, want a validation error", err)
	}
	if taken, _ := st.Taken(ctx, []string{ok.ID}); taken[0] {
		t.Errorf("a refused batch stored its valid record")
	}
	if _, err := mustManager(t, struct{ apikey.Store }{st}, apikey.Config{}).Import(ctx, []*apikey.Record{ok}); !errors.Is(err, apikey.ErrNoImport) {
		t.Errorf("Import on a store that is no Importer: err = %v, want ErrNoImport", err)
	}
}

func TestRollImportedKeyKeepsItsForm(t *testing.T) {
	ctx := context.Background()
	m := mustManager(t, openStore(t), apikey.Config{})
	old := "RollMe12." + drfSecret
	rec := importDRF(t, m, apikey.DRFKey{Prefix: "RollMe12", HashedKey: sha512Digest(old), Name: "r", Created: time.Now()})
	k, token, err := m.Roll(ctx, rec.ID, apikey.RollOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(token, "RollMe12.") || len(token) != len(old) || k.ID != rec.ID {
		t.Fatalf("Roll = %s, %q; want RollMe12.<32 characters>", k.ID, token)
	}
	if _, err := m.Verify(ctx, token); err != nil {
		t.Errorf("new token: %v", err)
	}
	if _, err := m.Verify(ctx, old); !errors.Is(err, apikey.ErrInvalidKey) {
		t.Errorf("old token after the roll: %v", err)
	}
}

// fakeHasher checks "fake$<key reversed>" and counts its calls.
type fakeHasher struct{ calls atomic.Int64 }

func (*fakeHasher) Algorithm() string { return "fake" }
func (f *fakeHasher) Verify(key, encoded string) bool {
	f.calls.Add(1)
	r := []byte(key)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return encoded == "fake$"+string(r)
}

func TestLegacyHashers(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	f := &fakeHasher{}
	m := mustManager(t, st, apikey.Config{LegacyHashers: []apikey.LegacyHasher{f}})
	key := "Fake1234." + drfSecret
	r := []byte(key)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	rec := importDRF(t, m, apikey.DRFKey{Prefix: "Fake1234", HashedKey: "fake$" + string(r), Name: "f", Created: time.Now()})
	// A native token never reaches the legacy hasher of an imported key.
	native, _ := apikey.FormatToken("ak", rec.ID, drfSecret)
	if _, err := m.Verify(ctx, native); !errors.Is(err, apikey.ErrInvalidKey) || f.calls.Load() != 0 {
		t.Fatalf("native token of an imported key: err = %v, legacy checks = %d; want ErrInvalidKey, 0", err, f.calls.Load())
	}
	if _, err := m.Verify(ctx, key); err != nil || f.calls.Load() != 1 {
		t.Fatalf("first use: err = %v, legacy checks = %d", err, f.calls.Load())
	}
	if _, err := m.Verify(ctx, key); err != nil || f.calls.Load() != 1 {
		t.Errorf("second use: err = %v, legacy checks = %d; want the native digest, no legacy check", err, f.calls.Load())
	}
	// Without the hasher the row cannot be imported.
	plain := mustManager(t, openStore(t), apikey.Config{})
	if _, err := plain.NewDRFRecord(apikey.DRFKey{Prefix: "Fake1234", HashedKey: "fake$x", Name: "f", Created: time.Now()}); !errors.Is(err, apikey.ErrInvalidInput) {
		t.Errorf("NewDRFRecord with an unconfigured algorithm: %v", err)
	}
	for _, bad := range [][]apikey.LegacyHasher{{f, f}, {nil}, {namedHasher("pbkdf2_sha256")}, {namedHasher("sha512")}, {namedHasher("")}, {namedHasher("a$b")}} {
		if _, err := apikey.NewManager(memstore.New(), apikey.Config{LegacyHashers: bad}); err == nil {
			t.Errorf("NewManager accepted legacy hashers %v", bad)
		}
	}
}

type namedHasher string

func (n namedHasher) Algorithm() string         { return string(n) }
func (namedHasher) Verify(key, enc string) bool { return false }

var _ io.Reader = (*prefixReader)(nil)

// TestCachedSHA512Memo checks the cached fast path of an imported sha512
// key: after the first match, the right key still verifies and a wrong one
// is still refused, from the cache.
func TestCachedSHA512Memo(t *testing.T) {
	ctx := context.Background()
	ms := openStore(t)
	key := "Memo1234." + drfSecret
	importDRF(t, mustManager(t, ms, apikey.Config{}), apikey.DRFKey{Prefix: "Memo1234", HashedKey: sha512Digest(key), Name: "memo", Created: time.Now()})
	st := &countingStore{Store: ms}
	m := mustManager(t, st, apikey.Config{Cache: &mapCache{m: map[string]*apikey.CacheEntry{}}})
	for i := range 3 {
		if _, err := m.Verify(ctx, "Memo1234."+drfSecret[:31]+"Q"); !errors.Is(err, apikey.ErrInvalidKey) {
			t.Errorf("round %d, wrong secret: %v", i, err)
		}
		if _, err := m.Verify(ctx, key); err != nil {
			t.Errorf("round %d: %v", i, err)
		}
	}
	if n := st.lookups.Load(); n != 1 {
		t.Errorf("store lookups = %d, want 1 (the rest from the cache)", n)
	}
}

// TestImportLifecycleFields imports a DRF key with every lifecycle field
// set after NewDRFRecord: Get shows them all, and the key behaves by them
// (disabled, test environment). A record with a previous secret, or with
// a lifecycle field Create would refuse, fails the whole batch with a
// *ValidationError naming the field.
func TestImportLifecycleFields(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	m := mustManager(t, st, apikey.Config{})
	created := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	token := "Life1234." + drfSecret
	mk := func(prefix string) *apikey.Record {
		t.Helper()
		rec, err := m.NewDRFRecord(apikey.DRFKey{Prefix: prefix, HashedKey: sha512Digest(prefix + "." + drfSecret), Name: "life", Created: created})
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	rec := mk("Life1234")
	disabled, used := created.Add(time.Minute), created.Add(2*time.Minute)
	rec.DisabledAt, rec.LastUsedAt = &disabled, &used
	rec.Environment = apikey.EnvTest
	rec.AllowedCIDRs = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	rec.InactivityExpiry = apikey.Inactivity(30 * 24 * time.Hour)
	rec.RateLimits = []apikey.RateLimit{{Name: "requests", Limit: 10, Period: time.Minute}}
	rec.Credits = &apikey.Credits{Remaining: 7}
	if _, err := m.Import(ctx, []*apikey.Record{rec}); err != nil {
		t.Fatal(err)
	}
	k, err := m.Get(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if k.DisabledAt == nil || !k.DisabledAt.Equal(disabled) || k.LastUsedAt == nil || !k.LastUsedAt.Equal(used) ||
		k.Environment != apikey.EnvTest || len(k.AllowedCIDRs) != 1 || k.InactivityExpiry != rec.InactivityExpiry ||
		len(k.RateLimits) != 1 || k.Credits == nil || k.Credits.Remaining != 7 || k.State != apikey.StateDisabled {
		t.Errorf("imported key = %+v", k)
	}
	if _, err := m.Verify(ctx, token); !errors.Is(err, apikey.ErrDisabled) {
		t.Errorf("Verify of the disabled import: %v, want ErrDisabled", err)
	}
	if _, err := m.Enable(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	if k, err := m.Verify(ctx, token); err != nil || k.Env() != apikey.EnvTest {
		t.Errorf("Verify after Enable: %+v, %v; want the test key", k, err)
	}

	for _, tc := range []struct {
		field string
		set   func(*apikey.Record)
	}{
		{"previous_secret", func(r *apikey.Record) { r.PreviousHash = sha512Digest("old") }},
		{"previous_secret", func(r *apikey.Record) {
			r.PreviousSecret = &apikey.PreviousSecret{RolledAt: created, Grace: time.Hour, ExpiresAt: created.Add(time.Hour)}
		}},
		{"environment", func(r *apikey.Record) { r.Environment = "prod" }},
		{"allowed_cidrs", func(r *apikey.Record) { r.AllowedCIDRs = []netip.Prefix{netip.MustParsePrefix("10.1.2.3/8")} }},
		{"inactivity_expiry", func(r *apikey.Record) { r.InactivityExpiry = apikey.Inactivity(time.Minute) }},
		{"ratelimits", func(r *apikey.Record) {
			r.RateLimits = []apikey.RateLimit{{Name: "requests", Limit: -1, Period: time.Minute}}
		}},
		{"credits", func(r *apikey.Record) { r.Credits = &apikey.Credits{Remaining: -1} }},
		{"disabled_at", func(r *apikey.Record) { r.DisabledAt = ptrTime(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)) }},
	} {
		ok, bad := mk("Okay5678"), mk("Bad5678")
		tc.set(bad)
		var ve *apikey.ValidationError
		if _, err := m.Import(ctx, []*apikey.Record{ok, bad}); !errors.As(err, &ve) || ve.Field != tc.field {
			t.Errorf("Import with a bad %s: err = %v, want a validation error for it", tc.field, err)
		}
		if taken, _ := st.Taken(ctx, []string{ok.ID, bad.ID}); taken[0] || taken[1] {
			t.Errorf("%s: a refused batch stored something", tc.field)
		}
	}
}

func ptrTime(t time.Time) *time.Time { return &t }
