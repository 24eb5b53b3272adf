package apikey_test

import (
	"encoding/json"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/memstore"
)

func TestParseCIDRs(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want []string
		err  string
	}{
		{[]string{"203.0.113.7/24", "2001:db8::1/32"}, []string{"203.0.113.0/24", "2001:db8::/32"}, ""},
		{[]string{"192.0.2.1"}, []string{"192.0.2.1/32"}, ""},
		{[]string{"2001:db8::1"}, []string{"2001:db8::1/128"}, ""},
		{[]string{"::ffff:192.0.2.0/120"}, []string{"192.0.2.0/24"}, ""},
		{[]string{"10.0.0.0/8", "10.1.0.0/8", "0.0.0.0/0"}, []string{"0.0.0.0/0", "10.0.0.0/8"}, ""},
		{[]string{}, []string{}, ""},
		{[]string{"10.0.0.0/33"}, nil, `invalid allowed_cidrs: entry 1 "10.0.0.0/33": bad prefix length /33`},
		{[]string{"10.0.0.0/8", "example.com"}, nil, `invalid allowed_cidrs: entry 2 "example.com": not an IP address or CIDR range`},
		{[]string{"fe80::1%eth0"}, nil, `entry 1 "fe80::1%eth0": an address with a zone cannot be allowed`},
		{[]string{" 10.0.0.0/8"}, nil, `entry 1 " 10.0.0.0/8": contains white space`},
		{[]string{""}, nil, `entry 1 "": empty`},
		{[]string{"10.0.0.0/x"}, nil, `bad prefix length /x`},
		{[]string{"2001:db8::/129"}, nil, `bad prefix length /129`},
	} {
		got, err := apikey.ParseCIDRs(c.in)
		if c.err != "" {
			if err == nil || !errors.Is(err, apikey.ErrInvalidInput) || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseCIDRs(%q) = %v, %v; want an error containing %q", c.in, got, err, c.err)
			}
			continue
		}
		var gotS []string
		for _, p := range got {
			gotS = append(gotS, p.String())
		}
		if err != nil || !slices.Equal(gotS, c.want) && len(c.want)+len(gotS) > 0 {
			t.Errorf("ParseCIDRs(%q) = %v, %v; want %v", c.in, gotS, err, c.want)
		}
	}
	many := make([]string, apikey.MaxAllowedCIDRs+1)
	for i := range many {
		many[i] = "10.0.0.1"
	}
	if _, err := apikey.ParseCIDRs(many); err == nil || !strings.Contains(err.Error(), "at most 100 ranges, got 101") {
		t.Errorf("ParseCIDRs(101 entries) = %v", err)
	}
}

func TestAllowsAddr(t *testing.T) {
	cidrs, err := apikey.ParseCIDRs([]string{"203.0.113.0/24", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	k := &apikey.Key{AllowedCIDRs: cidrs}
	for _, c := range []struct {
		addr string
		want bool
	}{
		{"203.0.113.9", true}, {"::ffff:203.0.113.9", true}, {"2001:db8:1::5", true}, {"fe80::1%eth0", false},
		{"203.0.114.1", false}, {"2001:db9::1", false}, {"", false},
	} {
		var a netip.Addr
		if c.addr != "" {
			a = netip.MustParseAddr(c.addr)
		}
		if got := k.AllowsAddr(a); got != c.want {
			t.Errorf("AllowsAddr(%q) = %v, want %v", c.addr, got, c.want)
		}
		err := k.Permits("", a)
		if c.want != (err == nil) || err != nil && (!errors.Is(err, apikey.ErrIPNotAllowed) || apikey.CodeOf(err) != apikey.CodeIPNotAllowed) {
			t.Errorf("Permits(%q) = %v", c.addr, err)
		}
	}
	if open := (&apikey.Key{}); !open.AllowsAddr(netip.Addr{}) {
		t.Error("a key without an allowlist refused an unknown address")
	}
	if err := (&apikey.Key{}).Permits(apikey.EnvTest, netip.Addr{}); !errors.Is(err, apikey.ErrWrongEnvironment) {
		t.Errorf("Permits(test) of a live key = %v", err)
	}
}

func TestInactiveAt(t *testing.T) {
	const day = 24 * time.Hour
	created := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	used := created.Add(10 * day)
	for _, c := range []struct {
		name   string
		own    time.Duration
		def    time.Duration
		last   *time.Time
		want   time.Time
		wantOK bool
	}{
		{"no policy", 0, 0, nil, time.Time{}, false},
		{"default, never used", 0, 30 * day, nil, created.Add(30 * day), true},
		{"default, used", 0, 30 * day, &used, used.Add(30 * day), true},
		{"own wins", 2 * day, 30 * day, &used, used.Add(2 * day), true},
		{"own without default", 2 * day, 0, nil, created.Add(2 * day), true},
		{"never", apikey.NoInactivityExpiry, 30 * day, &used, time.Time{}, false},
	} {
		k := &apikey.Key{CreatedAt: created, LastUsedAt: c.last, InactivityExpiry: apikey.Inactivity(c.own)}
		got, ok := k.InactiveAt(c.def)
		if ok != c.wantOK || !got.Equal(c.want) {
			t.Errorf("%s: InactiveAt = %v, %v; want %v, %v", c.name, got, ok, c.want, c.wantOK)
		}
		if !ok {
			if st := k.StateWith(created.Add(1000*day), c.def); st != apikey.StateActive {
				t.Errorf("%s: state = %s, want active", c.name, st)
			}
			continue
		}
		// The instant itself is inactive; the one before is not.
		if st := k.StateWith(got.Add(-time.Microsecond), c.def); st != apikey.StateActive {
			t.Errorf("%s: state just before = %s", c.name, st)
		}
		if st := k.StateWith(got, c.def); st != apikey.StateExpired {
			t.Errorf("%s: state at = %s", c.name, st)
		}
	}
}

func TestInactivityExpiryText(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		out  string
		err  bool
	}{
		{"90d", 90 * 24 * time.Hour, "90d", false},
		{"2w", 14 * 24 * time.Hour, "14d", false},
		{"36h", 36 * time.Hour, "36h", false},
		{"1d12h", 36 * time.Hour, "36h", false},
		{"never", apikey.NoInactivityExpiry, "never", false},
		{"0", 0, "", false},
		{"", 0, "", false},
		{"30m", 0, "", true},
		{"-5d", 0, "", true},
		{"36501d", 0, "", true},
		{"soon", 0, "", true},
	} {
		d, err := apikey.ParseInactivityExpiry(c.in)
		if c.err {
			var ve *apikey.ValidationError
			if !errors.As(err, &ve) || ve.Field != "inactivity_expiry" {
				t.Errorf("ParseInactivityExpiry(%q) = %v, %v; want a validation error of inactivity_expiry", c.in, d, err)
			}
			continue
		}
		if err != nil || d != c.want || apikey.FormatInactivityExpiry(d) != c.out {
			t.Errorf("ParseInactivityExpiry(%q) = %v, %v (formats %q); want %v, %q", c.in, d, err, apikey.FormatInactivityExpiry(d), c.want, c.out)
		}
	}
}

func TestKeyJSONNetEnv(t *testing.T) {
	cidrs, _ := apikey.ParseCIDRs([]string{"10.0.0.0/8", "2001:db8::/32"})
	k := apikey.Key{ID: testID, Prefix: "ak", Name: "n", Environment: apikey.EnvTest, AllowedCIDRs: cidrs, InactivityExpiry: apikey.Inactivity(90 * 24 * time.Hour)}
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"environment":"test"`, `"allowed_cidrs":["10.0.0.0/8","2001:db8::/32"]`, `"inactivity_expiry":"90d"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("json %s lacks %s", b, want)
		}
	}
	var back apikey.Key
	if err := json.Unmarshal(b, &back); err != nil || back.Environment != apikey.EnvTest || !slices.Equal(back.AllowedCIDRs, cidrs) || back.InactivityExpiry != k.InactivityExpiry {
		t.Errorf("round trip = %+v, %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"inactivity_expiry":"soon"}`), &back); err == nil {
		t.Error("a malformed inactivity_expiry decoded")
	}
	b, _ = json.Marshal(apikey.Key{})
	if !strings.Contains(string(b), `"environment":"live"`) || strings.Contains(string(b), "inactivity_expiry") {
		t.Errorf("zero key json = %s: want environment live and no inactivity_expiry", b)
	}
}

func TestNewManagerNetEnvConfig(t *testing.T) {
	for _, c := range []struct {
		cfg  apikey.Config
		want string
	}{
		{apikey.Config{Environment: "prod"}, `Environment must be live, test or empty (both), got "prod"`},
		{apikey.Config{InactivityExpiry: time.Minute}, "InactivityExpiry 1m0s is outside 1h..36500d"},
		{apikey.Config{InactivityExpiry: 24 * time.Hour, UsageFlushInterval: -1}, "InactivityExpiry needs usage tracking"},
	} {
		_, err := apikey.NewManager(memstore.New(), c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewManager(%+v) = %v, want %q", c.cfg, err, c.want)
		}
	}
}

// A test key's token is found in text and identified like a live one.
func TestTestTokensFoundAndIdentified(t *testing.T) {
	ctx := t.Context()
	m, err := apikey.NewManager(memstore.New(), apikey.Config{UsageFlushInterval: -1, Prefix: strings.Repeat("p", apikey.MaxPrefixLength)})
	if err != nil {
		t.Fatal(err)
	}
	k, token, err := m.Create(ctx, apikey.CreateParams{Name: "t", Environment: apikey.EnvTest})
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for match := range apikey.FindTokens([]byte("leaked: " + token + " in a gist")) {
		found = append(found, match.Token.ID)
	}
	if len(found) != 1 || found[0] != k.ID {
		t.Errorf("FindTokens found %v, want %s", found, k.ID)
	}
	if got, err := m.Identify(ctx, token); err != nil || got.ID != k.ID {
		t.Errorf("Identify(test token) = %v, %v", got, err)
	}
}

// FuzzAllowsAddr: AllowsAddr agrees with netip.Prefix.Contains over the
// normalised ranges (an IPv4 address in IPv6's mapped form counting as
// IPv4).
func FuzzAllowsAddr(f *testing.F) {
	f.Add([]byte{10, 0, 0, 0}, uint8(8), []byte{10, 1, 2, 3})
	f.Add([]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, uint8(32), []byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{0, 0, 0, 0}, uint8(0), []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, prefix []byte, bits uint8, addr []byte) {
		pa, ok1 := netip.AddrFromSlice(prefix)
		a, ok2 := netip.AddrFromSlice(addr)
		if !ok1 || !ok2 {
			return
		}
		p := netip.PrefixFrom(pa, int(bits)%(pa.BitLen()+1))
		ps, err := apikey.NormalizeCIDRs([]netip.Prefix{p})
		if err != nil {
			return
		}
		k := &apikey.Key{AllowedCIDRs: ps}
		want := ps[0].Contains(a.Unmap())
		if got := k.AllowsAddr(a); got != want {
			t.Fatalf("AllowsAddr(%v) with %v = %v, want %v", a, ps, got, want)
		}
	})
}
