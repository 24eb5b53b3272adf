package djangohash_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/djangohash"
	"github.com/go-apikey/apikey/memstore"
)

// vectors were made by Django 3.2's make_password, with the hashers'
// costs lowered (subclasses, as Django's own tests do) so that the tests
// stay fast under the race detector, over keys made by DRF API Key 3.1.0's
// create_key: argon2 with argon2-cffi 21.1, bcrypt with bcrypt 3.2.
// scrypt, which Django gained in 4.0, with Python's hashlib.scrypt in the
// format of Django's ScryptPasswordHasher; argon2i with argon2-cffi's
// low-level API. The test against DRF API Key itself (cmd/apikey,
// APIKEY_TEST_DRF_SRC) uses Django's default costs.
var vectors = []struct {
	name, key, encoded string
}{
	{"argon2id", "UsEYcYeW.vgyWsWsX3nPZEvy2CZVnuHUdb1MijLQa",
		"argon2$argon2id$v=19$m=1024,t=1,p=2$Q3NrcTR5WVBhUUNFSTc2aEZCMkFHRQ$gF2PdLOBAR6gBk4Te61KcA"},
	{"argon2i", "Argn1234.Vrbpu3AMmt3RRgBWfd3pGwqdgpKQa7zq",
		"argon2$argon2i$v=19$m=512,t=2,p=2$c2FsdHNhbHRzYWx0$itUyVJutXHl+AFHLknmpnA"},
	{"bcrypt_sha256", "dmSe2KUc.ede8iqmxCJbkB5TlRqqHiZy2eSQkW4oQ",
		"bcrypt_sha256$$2b$04$aSupI2CzRfj7Odl4CGTks.gGY/qR0OQ/g3j9cLmEF1GT7mMhBg.p6"},
	{"bcrypt", "CncGDYVU.rWNXVo6v9QX4MiSBukH6QrIx2nJkMmFp",
		"bcrypt$$2b$04$AoRpbKIZkTLxRSVKtLa3hOzdSapKplG9XOKO0YBuPZdH1hxSArtPy"},
	{"scrypt", "ScRy1234.Vrbpu3AMmt3RRgBWfd3pGwqdgpKQa7zq",
		"scrypt$1024$aB3dE6gH9jK2mN5pQ8sT1v$8$2$gWnGkHHAub3yXhGJugCXa1rBsd0SQ0feebM+KNDlp3iZgFITzSZsa+fnmOA9nQuin2n8kdkTTmjnIvt4ODpk4A=="},
}

// hasherOf returns the hasher of the algorithm that starts encoded.
func hasherOf(t *testing.T, encoded string) apikey.LegacyHasher {
	t.Helper()
	alg, _, _ := strings.Cut(encoded, "$")
	for _, h := range djangohash.Hashers() {
		if h.Algorithm() == alg {
			return h
		}
	}
	t.Fatalf("no hasher for %q", alg)
	return nil
}

func TestVectors(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			h := hasherOf(t, v.encoded)
			if !h.Verify(v.key, v.encoded) {
				t.Errorf("Verify(right key) = false")
			}
			wrong := v.key[:len(v.key)-1] + "X"
			if h.Verify(wrong, v.encoded) {
				t.Errorf("Verify(wrong key) = true")
			}
		})
	}
}

func TestMalformedNeverMatches(t *testing.T) {
	key := vectors[1].key
	for _, enc := range []string{
		"", "argon2", "argon2$", "bcrypt$", "scrypt$",
		// argon2: version 0x10, argon2d, bad parameters, bad base64
		"argon2$argon2i$m=512,t=2,p=2$c2FsdHNhbHRzYWx0$itUyVJutXHl+AFHLknmpnA",
		"argon2$argon2d$v=19$m=512,t=2,p=2$c2FsdHNhbHRzYWx0$itUyVJutXHl+AFHLknmpnA",
		"argon2$argon2i$v=19$m=512,t=2,p=2,x=1$c2FsdHNhbHRzYWx0$itUyVJutXHl+AFHLknmpnA",
		"argon2$argon2i$v=19$m=99999999,t=2,p=2$c2FsdHNhbHRzYWx0$itUyVJutXHl+AFHLknmpnA",
		"argon2$argon2i$v=19$m=512,t=0,p=2$c2FsdHNhbHRzYWx0$itUyVJutXHl+AFHLknmpnA",
		"argon2$argon2i$v=19$m=512,t=2,p=0$c2FsdHNhbHRzYWx0$itUyVJutXHl+AFHLknmpnA",
		"argon2$argon2i$v=19$m=512,t=2,p=2$c2FsdHNhbHRzYWx0$!!",
		"argon2$argon2i$v=19$m=512,t=2,p=2$c2FsdHNhbHRzYWx0",
		// bcrypt: not a bcrypt digest, cost too high
		"bcrypt$$1$abc", "bcrypt$$2b$31$wgAo5G6uhpMzlW5.ErtD2.a/lqnWFe1r12QVITBTELnhLydm/8g4u",
		"bcrypt_sha256$$2b$04$AoRpbKIZkTLxRSVKtLa3hOzdSapKplG9XOKO0YBuPZdH1hxSArtPy", // the bcrypt of the key itself
		// scrypt: N not a power of two, too much memory, bad base64
		"scrypt$16383$salt$8$1$7CpwmBWAafVnKmMygl91L5bltkTb5wZQrmZXMVP7WK5DEghZgnTk4ywJd40Vp6vefwhUdbkrDwnQ/q4T0r5vgw==",
		"scrypt$1048576$salt$16$1$7CpwmBWAafVnKmMygl91L5bltkTb5wZQrmZXMVP7WK5DEghZgnTk4ywJd40Vp6vefwhUdbkrDwnQ/q4T0r5vgw==",
		"scrypt$16384$salt$8$1$%%%",
	} {
		alg, _, _ := strings.Cut(enc, "$")
		for _, h := range djangohash.Hashers() {
			if h.Algorithm() == alg && h.Verify(key, enc) {
				t.Errorf("%s matched %q", h.Algorithm(), enc)
			}
		}
	}
}

// TestManagerUpgrades imports one key per hasher through a Manager, and
// checks that its first use replaces the digest with the native form.
func TestManagerUpgrades(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	m, err := apikey.NewManager(st, apikey.Config{LegacyHashers: djangohash.Hashers(), UsageFlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vectors {
		prefix, _, _ := strings.Cut(v.key, ".")
		rec, err := m.NewDRFRecord(apikey.DRFKey{Prefix: prefix, HashedKey: v.encoded, Name: v.name, Created: time.Now()})
		if err != nil {
			t.Fatalf("%s: NewDRFRecord: %v", v.name, err)
		}
		if _, err := m.Import(ctx, []*apikey.Record{rec}); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Verify(ctx, v.key); err != nil {
			t.Errorf("%s: Verify: %v", v.name, err)
			continue
		}
		got, err := st.Lookup(ctx, rec.ID)
		if err != nil || !strings.HasPrefix(got.Hash, "sha256$") {
			t.Errorf("%s: digest after the first use = %q, %v; want sha256$...", v.name, got.Hash, err)
		}
	}
}
