package apikeyhttp

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/go-apikey/apikey"
)

// ErrBadForwardedFor reports a request whose X-Forwarded-For header could
// not be read while the client's address was needed (the key has a network
// allowlist and the request came through a trusted proxy). The request is
// refused: 400 bad_forwarded_for. The error is a *ForwardedForError that
// says what is wrong.
var ErrBadForwardedFor = errors.New("apikeyhttp: malformed X-Forwarded-For")

// CodeBadForwardedFor stands for ErrBadForwardedFor (400).
const CodeBadForwardedFor apikey.Code = "bad_forwarded_for"

// ForwardedForError says what is wrong with an X-Forwarded-For header. It
// matches ErrBadForwardedFor with errors.Is.
type ForwardedForError struct {
	// Reason is a lowercase sentence fragment, safe to show to the client.
	Reason string
}

// Error implements error.
func (e *ForwardedForError) Error() string {
	return "apikeyhttp: malformed X-Forwarded-For: " + e.Reason
}

// Is reports whether target is ErrBadForwardedFor.
func (e *ForwardedForError) Is(target error) bool { return target == ErrBadForwardedFor }

// maxForwardedFor bounds the entries of X-Forwarded-For that ClientAddr
// reads: no legitimate chain of proxies is longer.
const maxForwardedFor = 32

// ClientAddr returns the address of the client that sent r, as the
// network allowlists of keys are checked against it: the address of
// r.RemoteAddr, unless that address lies in one of trusted (the proxies
// in front of the service), in which case it is the right-most entry of
// X-Forwarded-For that is not itself a trusted proxy. The entries are read
// from right to left, over every X-Forwarded-For header line in order, so
// that what a client writes into the header itself (the left part) is
// never believed unless every proxy after it is trusted; when every entry
// is a trusted proxy, the left-most is the client. A request from a
// trusted proxy without the header is the proxy's own. Entries may carry a
// port ("192.0.2.1:4711", "[2001:db8::1]:443"); IPv4 addresses in IPv6's
// mapped form are returned as IPv4, and zones are dropped.
//
// With trusted empty, the header is never read. A malformed entry (not an
// address, empty, "unknown"), or more than 32 entries, when the header
// must be read, is a *ForwardedForError (ErrBadForwardedFor); ClientAddr
// never panics. A RemoteAddr that holds no IP address (a Unix socket)
// yields the zero Addr and no error: the address is unknown, which no
// allowlist accepts.
func ClientAddr(r *http.Request, trusted []netip.Prefix) (netip.Addr, error) {
	remote := parseHostAddr(r.RemoteAddr)
	if !remote.IsValid() || !isTrusted(remote, trusted) {
		return remote, nil
	}
	lines := r.Header.Values("X-Forwarded-For")
	if len(lines) == 0 {
		return remote, nil
	}
	var (
		n    int
		left netip.Addr
	)
	for i := len(lines) - 1; i >= 0; i-- {
		entries := strings.Split(lines[i], ",")
		for j := len(entries) - 1; j >= 0; j-- {
			n++
			if n > maxForwardedFor {
				return netip.Addr{}, &ForwardedForError{Reason: "more than " + strconv.Itoa(maxForwardedFor) + " entries"}
			}
			entry := trim(entries[j])
			a := parseHostAddr(entry)
			if !a.IsValid() {
				return netip.Addr{}, &ForwardedForError{Reason: fmt.Sprintf("entry %q is not an IP address", shorten(entry))}
			}
			if !isTrusted(a, trusted) {
				return a, nil
			}
			left = a
		}
	}
	return left, nil
}

// parseHostAddr reads an IP address, alone or with a port; the zero Addr
// when s is neither.
func parseHostAddr(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone("")
	}
	return netip.Addr{}
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// shorten cuts a header value quoted in an error to 45 bytes, and a key
// pasted into it to its id (apikey.Redact).
func shorten(s string) string {
	s = apikey.Redact(s)
	if len(s) > 45 {
		return s[:45] + "…"
	}
	return s
}

// trustedProxiesOf checks and normalises Config.TrustedProxies.
func trustedProxiesOf(in []netip.Prefix) ([]netip.Prefix, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out, err := apikey.NormalizeCIDRs(in)
	if err != nil {
		var ve *apikey.ValidationError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("apikeyhttp: TrustedProxies: %s", ve.Reason)
		}
		return nil, fmt.Errorf("apikeyhttp: TrustedProxies: %w", err)
	}
	return out, nil
}
