package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// userCounter is the part of the admin store that tells a first run: the
// sqlite and postgres admin stores implement it.
type userCounter interface {
	CountUsers(ctx context.Context) (int, error)
}

// firstRun prints, once serve listens, where the admin site is and, while
// it has no user, the one command that makes the first.
func (a *app) firstRun(ctx context.Context, db *database, addr net.Addr) {
	base := "http://" + browsableAddr(addr)
	fmt.Fprintf(a.stderr, "apikey: admin site at %s/admin/\n", base)
	uc, ok := db.admin.(userCounter)
	if !ok {
		return
	}
	n, err := uc.CountUsers(ctx)
	if err != nil || n > 0 {
		return
	}
	fmt.Fprintf(a.stderr, "apikey: no admin user yet; make the first one (it asks for a password), then sign in at %s/admin/:\n", base)
	fmt.Fprintf(a.stderr, "  apikey admin create-user you@example.com%s\n", a.dbOptions())
}

// browsableAddr turns a listening address into one a browser on this
// machine can open: an unspecified host (0.0.0.0, ::) becomes loopback.
func browsableAddr(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return addr.String()
	}
	host := "127.0.0.1"
	if tcp.IP.To4() == nil {
		host = "::1"
	}
	return net.JoinHostPort(host, fmt.Sprint(tcp.Port))
}

// dbOptions returns the global options another command needs to reach the
// same database: those given as flags (the environment is shared), with
// any password in a URL masked.
func (a *app) dbOptions() string {
	var b strings.Builder
	if a.sources["config"].kind == "flag" {
		fmt.Fprintf(&b, " --config %s", shellQuote(a.configFlag))
	}
	if a.sources["db"].kind == "flag" {
		v := a.dbFlag
		if u, err := url.Parse(v); err == nil && u.User != nil {
			v = u.Redacted()
		}
		fmt.Fprintf(&b, " --db %s", shellQuote(v))
	}
	return b.String()
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@=+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
