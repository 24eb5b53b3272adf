package apikey

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestAllowIndexAgrees checks the allowlist the cache compiles against
// the loops it stands in for: over random lists (IPv4, IPv6, IPv6's mapped
// IPv4 form, /0 and full-length ranges) and random addresses, many of them
// inside or at the edges of a listed range, both answer alike.
func TestAllowIndexAgrees(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	randAddr := func() netip.Addr {
		switch r.IntN(3) {
		case 0:
			return netip.AddrFrom4([4]byte{byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
		case 1:
			var b [16]byte
			for i := range b {
				b[i] = byte(r.IntN(256))
			}
			return netip.AddrFrom16(b)
		default:
			return netip.AddrFrom16(netip.AddrFrom4([4]byte{10, byte(r.IntN(4)), byte(r.IntN(256)), byte(r.IntN(256))}).As16()) // mapped
		}
	}
	// near returns an address close to p's: inside it, or just outside.
	near := func(p netip.Prefix) netip.Addr {
		b := p.Addr().AsSlice()
		i := r.IntN(len(b))
		b[i] ^= byte(1 << r.IntN(8))
		a, _ := netip.AddrFromSlice(b)
		return a
	}
	agreed, allowed := 0, 0
	for range 2000 {
		var cidrs []netip.Prefix
		for range 1 + r.IntN(12) {
			a := randAddr()
			cidrs = append(cidrs, netip.PrefixFrom(a, r.IntN(a.BitLen()+1)).Masked())
		}
		plain := &Key{AllowedCIDRs: cidrs}
		indexed := &Key{AllowedCIDRs: cidrs}
		var x allowIndex
		x.compile(cidrs)
		indexed.allow = &x
		for range 20 {
			addr := randAddr()
			if r.IntN(2) == 0 {
				addr = near(cidrs[r.IntN(len(cidrs))])
			}
			want := plain.AllowsAddr(addr)
			if got := indexed.AllowsAddr(addr); got != want {
				t.Fatalf("allowlist %v, address %v: compiled says %v, the list says %v", cidrs, addr, got, want)
			}
			agreed++
			if want {
				allowed++
			}
		}
	}
	// The cases must cover both answers in earnest.
	if allowed < agreed/10 || allowed > agreed*9/10 {
		t.Fatalf("%d of %d addresses allowed: the test cases are lopsided", allowed, agreed)
	}
}

// TestAllowIndexFollowsTheList checks that a key whose allowlist is not
// the one the index was made from (a Clone, a copy given another list) is
// checked from its own list.
func TestAllowIndexFollowsTheList(t *testing.T) {
	wide := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	k := &Key{AllowedCIDRs: wide}
	var x allowIndex
	x.compile(wide)
	k.allow = &x
	addr := netip.MustParseAddr("10.1.2.3")
	if !k.AllowsAddr(addr) {
		t.Fatal("the compiled list refuses an address it holds")
	}
	narrowed := *k
	narrowed.AllowedCIDRs = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	if narrowed.AllowsAddr(addr) {
		t.Error("a copy with another list was checked against the old index")
	}
	if c := k.Clone(); c.allow != nil {
		t.Error("Clone keeps the index of the list it copied")
	}
}
