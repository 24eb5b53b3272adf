package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/go-apikey/apikey/internal/server"
)

func init() { register(newServeCommand) }

// defaultAddr is where serve listens without --addr: loopback only.
const defaultAddr = "127.0.0.1:8080"

// shutdownTimeout bounds the graceful shutdown: requests in flight get this
// long to finish, then the Manager gets as long to write pending usage.
const shutdownTimeout = 10 * time.Second

func newServeCommand(a *app) *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "serve [--addr HOST:PORT]",
		Short: "Run the HTTP API",
		Long: `Run the apikey HTTP API: a JSON API under /v1 to create, list, change,
revoke, roll, delete and verify keys, /v1/openapi.json, /healthz and /readyz.

The API is protected by keys of this same database: apikey:admin grants
every route, apikey:verify only POST /v1/verify. Make the first admin key
with the CLI:

  apikey create --name admin --scope apikey:admin

Port 0 picks a free port. The bound address is logged on standard error as
"apikey: listening on http://HOST:PORT", then one line per request.
SIGINT or SIGTERM stops the server gracefully: requests in flight get 10
seconds to finish, and the command exits 0.`,
		Example: `  apikey serve
  apikey serve --addr 0.0.0.0:8080 --db postgres://apikey@db/apikey`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkAddr(addr); err != nil {
				return err
			}
			ctx := cmd.Context()
			m, err := a.manager(ctx)
			if err != nil {
				return err
			}
			// The store answers /readyz; both backends can ping.
			pinger, _ := a.db.store.(server.Pinger)
			logger := slog.New(slog.NewTextHandler(a.stderr, nil))
			srv, err := server.New(server.Config{Manager: m, Pinger: pinger, Logger: logger, Now: a.now})
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				_ = m.Close(context.Background())
				var op *net.OpError
				if errors.As(err, &op) && op.Err != nil {
					err = op.Err // without the repeated address
				}
				return &codedError{code: exitTrouble, err: fmt.Errorf("cannot listen on %s: %w", addr, err)}
			}
			hs := srv.HTTPServer()
			fmt.Fprintf(a.stderr, "apikey: listening on http://%s\n", ln.Addr())
			served := make(chan error, 1)
			go func() { served <- hs.Serve(ln) }()

			var serveErr error
			select {
			case serveErr = <-served:
			case <-ctx.Done():
			}
			sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer cancel()
			err = hs.Shutdown(sctx)
			if serveErr == nil {
				serveErr = <-served
			}
			if errors.Is(serveErr, http.ErrServerClosed) {
				serveErr = nil
			}
			mctx, mcancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer mcancel()
			err = errors.Join(serveErr, err, m.Close(mctx))
			if err != nil {
				return fmt.Errorf("stopping the server: %w", err)
			}
			fmt.Fprintln(a.stderr, "apikey: stopped")
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", defaultAddr, "address to listen on, HOST:PORT (port 0 picks a free port)")
	return cmd
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
