package apikey

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// MaxAllowedCIDRs is the most network ranges a key's allowlist may hold.
const MaxAllowedCIDRs = 100

// ErrIPNotAllowed reports a key whose secret matched but whose network
// allowlist (Key.AllowedCIDRs) does not hold the client's address, or a
// check that was given no client address for a key that has an allowlist.
// Its code is ip_not_allowed (HTTP 403). The error is usually an
// *AddrError that names the address.
var ErrIPNotAllowed = errors.New("apikey: client address not allowed for this key")

// AddrError reports the client address a key's allowlist refused. It
// matches ErrIPNotAllowed with errors.Is.
type AddrError struct {
	// Addr is the client address; the zero Addr means none was known.
	Addr netip.Addr
}

// Error implements error.
func (e *AddrError) Error() string {
	if !e.Addr.IsValid() {
		return "apikey: client address not allowed for this key: the address is unknown and the key has a network allowlist"
	}
	return "apikey: client address " + e.Addr.String() + " not allowed for this key"
}

// Is reports whether target is ErrIPNotAllowed.
func (e *AddrError) Is(target error) bool { return target == ErrIPNotAllowed }

// ParseCIDRs reads the entries of a network allowlist as people write
// them: CIDR ranges in IPv4 or IPv6 ("203.0.113.0/24", "2001:db8::/32"),
// or bare addresses, which mean one address (/32 or /128). It returns
// them normalised as NormalizeCIDRs does. A malformed entry, a zone
// ("fe80::1%eth0") and more than MaxAllowedCIDRs entries are a
// *ValidationError for the field "allowed_cidrs" that quotes the entry
// and its position.
func ParseCIDRs(in []string) ([]netip.Prefix, error) {
	if len(in) > MaxAllowedCIDRs {
		return nil, invalid("allowed_cidrs", "at most %d ranges, got %d", MaxAllowedCIDRs, len(in))
	}
	out := make([]netip.Prefix, 0, len(in))
	for i, s := range in {
		p, err := parseCIDR(s)
		if err != nil {
			return nil, invalid("allowed_cidrs", "entry %d %q: %v", i+1, s, err)
		}
		out = append(out, p)
	}
	return NormalizeCIDRs(out)
}

func parseCIDR(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, errors.New("empty")
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return netip.Prefix{}, errors.New("contains white space")
	}
	if strings.IndexByte(s, '%') >= 0 {
		return netip.Prefix{}, errors.New("an address with a zone cannot be allowed")
	}
	if strings.IndexByte(s, '/') < 0 {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, errors.New("not an IP address or CIDR range")
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		addr, bits, _ := strings.Cut(s, "/")
		if _, aerr := netip.ParseAddr(addr); aerr != nil {
			return netip.Prefix{}, errors.New("not an IP address or CIDR range")
		}
		return netip.Prefix{}, fmt.Errorf("bad prefix length /%s", bits)
	}
	return p, nil
}

// NormalizeCIDRs returns the allowlist in its stored form: every range
// masked to its prefix length ("10.1.2.3/8" is 10.0.0.0/8), an IPv4 range
// written in IPv6's mapped form (::ffff:10.0.0.0/104) turned into IPv4,
// sorted and without duplicates. More than MaxAllowedCIDRs ranges or an
// invalid or zoned prefix is a *ValidationError for "allowed_cidrs".
// Create and Update apply it.
func NormalizeCIDRs(in []netip.Prefix) ([]netip.Prefix, error) {
	if len(in) > MaxAllowedCIDRs {
		return nil, invalid("allowed_cidrs", "at most %d ranges, got %d", MaxAllowedCIDRs, len(in))
	}
	out := make([]netip.Prefix, 0, len(in))
	for i, p := range in {
		if !p.IsValid() {
			return nil, invalid("allowed_cidrs", "entry %d: not a valid range", i+1)
		}
		if p.Addr().Zone() != "" {
			return nil, invalid("allowed_cidrs", "entry %d %q: an address with a zone cannot be allowed", i+1, p)
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return slices.Compact(out), nil
}

// AllowsAddr reports whether the key's network allowlist lets addr use it:
// always when the key has no allowlist; otherwise when one of its ranges
// holds addr (an IPv4 address in IPv6's mapped form counts as IPv4). The
// zero Addr (the client's address is unknown) is never allowed by an
// allowlist. It allocates nothing.
func (k *Key) AllowsAddr(addr netip.Addr) bool {
	if len(k.AllowedCIDRs) == 0 {
		return true
	}
	if !addr.IsValid() {
		return false
	}
	addr = addr.Unmap()
	if x := k.allow; x != nil && x.of(k.AllowedCIDRs) {
		return x.allows(addr)
	}
	// The comparisons are made on the address's bits, once converted,
	// rather than with netip.Prefix.Contains, which checks zones and
	// families again for each range: with ten ranges this halves the cost
	// of a check (see BenchmarkPermits).
	if addr.Is4() {
		a4 := addr.As4()
		a := binary.BigEndian.Uint32(a4[:])
		for _, p := range k.AllowedCIDRs {
			pa := p.Addr()
			if !pa.Is4() {
				continue
			}
			p4 := pa.As4()
			// A shift by 32 (a /0 range) gives 0 in Go: every address.
			if (a^binary.BigEndian.Uint32(p4[:]))>>(32-p.Bits()) == 0 {
				return true
			}
		}
		return false
	}
	a16 := addr.As16()
	hi, lo := binary.BigEndian.Uint64(a16[:8]), binary.BigEndian.Uint64(a16[8:])
	for _, p := range k.AllowedCIDRs {
		pa := p.Addr()
		if !pa.Is6() || pa.Is4In6() {
			continue
		}
		p16 := pa.As16()
		dh, dl := hi^binary.BigEndian.Uint64(p16[:8]), lo^binary.BigEndian.Uint64(p16[8:])
		switch bits := p.Bits(); {
		case bits < 0:
		case bits <= 64:
			if dh>>(64-bits) == 0 {
				return true
			}
		default:
			if dh == 0 && dl>>(128-bits) == 0 {
				return true
			}
		}
	}
	return false
}

// Permits applies the rules of a key that depend on where it is presented:
// the environment, when want is set (ErrWrongEnvironment), and the network
// allowlist against addr (an *AddrError, matching ErrIPNotAllowed). The
// HTTP middleware, Check and the service's verify call apply it after
// verification; call it yourself where you verify keys with Verify and
// know the client's address.
func (k *Key) Permits(want Environment, addr netip.Addr) error {
	if err := checkEnvironment(k, want); err != nil {
		return err
	}
	if !k.AllowsAddr(addr) {
		return &AddrError{Addr: addr}
	}
	return nil
}

// cidrStrings is the audit form of an allowlist: its ranges as text, or
// nil when empty.
func cidrStrings(ps []netip.Prefix) any {
	if len(ps) == 0 {
		return nil
	}
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// allowIndex is an allowlist compiled for the verification cache: each
// range as its network and mask, IPv4 and IPv6 apart, in one small array,
// so that a check reads a cache line or two of the entry, where the
// netip.Prefix values it comes from span five for ten ranges, and skips the
// ranges of the other family without reading them. It answers as
// AllowsAddr's loops do: a range in IPv6's mapped IPv4 form
// (NormalizeCIDRs never stores one) and an invalid one match nothing.
type allowIndex struct {
	// first and n identify the AllowedCIDRs it was compiled from: a key
	// whose list is another (a Clone, a changed copy) is checked from
	// its list.
	first *netip.Prefix
	n     int
	v4    []uint64    // network<<32 | mask
	v6    [][4]uint64 // network high, low, mask high, low
}

// compile makes x the index of cidrs, which is not empty.
func (x *allowIndex) compile(cidrs []netip.Prefix) {
	*x = allowIndex{first: &cidrs[0], n: len(cidrs)}
	n4 := 0
	for _, p := range cidrs {
		if p.Addr().Is4() {
			n4++
		}
	}
	x.v4 = make([]uint64, 0, n4)
	x.v6 = make([][4]uint64, 0, len(cidrs)-n4)
	for _, p := range cidrs {
		// Shifts by the width of the operand or more give 0: a /0 range
		// has the mask 0, which every address passes.
		a, bits := p.Addr(), p.Bits()
		switch {
		case bits < 0:
		case a.Is4():
			a4 := a.As4()
			x.v4 = append(x.v4, uint64(binary.BigEndian.Uint32(a4[:]))<<32|uint64(^uint32(0)<<(32-bits)))
		case a.Is6() && !a.Is4In6():
			a16 := a.As16()
			mh, ml := ^uint64(0)<<(64-min(bits, 64)), ^uint64(0)<<(128-bits)
			x.v6 = append(x.v6, [4]uint64{binary.BigEndian.Uint64(a16[:8]), binary.BigEndian.Uint64(a16[8:]), mh, ml})
		}
	}
}

// of reports whether x was compiled from cidrs.
func (x *allowIndex) of(cidrs []netip.Prefix) bool {
	return x.n == len(cidrs) && x.first == &cidrs[0]
}

// allows reports whether a range of x holds addr, a valid unmapped
// address.
func (x *allowIndex) allows(addr netip.Addr) bool {
	if addr.Is4() {
		a4 := addr.As4()
		a := uint64(binary.BigEndian.Uint32(a4[:]))
		for _, r := range x.v4 {
			if (a^r>>32)&(r&0xffffffff) == 0 {
				return true
			}
		}
		return false
	}
	a16 := addr.As16()
	hi, lo := binary.BigEndian.Uint64(a16[:8]), binary.BigEndian.Uint64(a16[8:])
	for i := range x.v6 {
		r := &x.v6[i]
		if (hi^r[0])&r[2] == 0 && (lo^r[1])&r[3] == 0 {
			return true
		}
	}
	return false
}
