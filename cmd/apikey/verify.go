package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/go-apikey/apikey"
	"github.com/spf13/cobra"
)

func init() { register(newVerifyCommand) }

// verifyResult is the JSON of "apikey verify --json": the answer of POST
// /v1/verify, with the reason of a rejection.
type verifyResult struct {
	Valid  bool        `json:"valid"`
	Code   apikey.Code `json:"code"`
	Reason string      `json:"reason,omitempty"`
	Key    *apikey.Key `json:"key,omitempty"`
}

func newVerifyCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify [KEY] [--json]",
		Short: "Check a key, as a server would",
		Long: `Check a key as a server would: shape and checksum, then the stored hash,
revocation and expiry. The key is the argument or, without one, the first line
of standard input (which keeps it out of shell history and process lists).

Prints "valid: ID (NAME)", or "rejected: REASON" where REASON is invalid,
expired, revoked or disabled. The key itself is never printed. With --json, prints
the answer of POST /v1/verify: {"valid": true, "code": "valid", "key":
{...}} or {"valid": false, "code": "key_revoked", "reason": "revoked"}.

Exit status:
  0  the key is valid
  1  the key was rejected: invalid, expired, revoked or disabled
  2  the check could not be made: a usage error, bad configuration, or the
     database is unavailable`,
		Example: `  apikey verify "$KEY"
  printf '%s\n' "$KEY" | apikey verify`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usagef("verify takes at most one key (got %d arguments)", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var token string
			if len(args) == 1 {
				token = args[0]
			} else {
				line, err := firstLine(a.stdin)
				if err != nil {
					return err
				}
				token = line
			}
			token = strings.TrimSpace(token)
			if token == "" {
				return usagef("verify needs a key: give it as the argument or on standard input")
			}
			m, err := a.manager(cmd.Context())
			if err != nil {
				return err
			}
			k, err := m.Verify(cmd.Context(), token)
			if err == nil {
				if asJSON {
					return writeJSON(a.stdout, verifyResult{Valid: true, Code: apikey.CodeValid, Key: k})
				}
				_, err = fmt.Fprintf(a.stdout, "valid: %s (%s)\n", k.ID, k.Name)
				return err
			}
			reason := ""
			switch {
			case errors.Is(err, apikey.ErrUnavailable):
				return err
			case errors.Is(err, apikey.ErrRevoked):
				reason = "revoked"
			case errors.Is(err, apikey.ErrExpired):
				reason = "expired"
			case errors.Is(err, apikey.ErrDisabled):
				reason = "disabled"
			case errors.Is(err, apikey.ErrInvalidKey):
				reason = "invalid"
				// Parse errors say what is wrong with the shape (too short,
				// bad checksum...); they never contain the key.
				if _, perr := apikey.ParseAnyToken(token); perr != nil {
					reason += " (" + strings.TrimPrefix(perr.Error(), apikey.ErrInvalidKey.Error()+": ") + ")"
				}
			default:
				return err
			}
			if asJSON {
				if err := writeJSON(a.stdout, verifyResult{Code: apikey.CodeOf(err), Reason: reason}); err != nil {
					return err
				}
				return &codedError{code: exitRefused}
			}
			fmt.Fprintf(a.stdout, "rejected: %s\n", reason)
			return &codedError{code: exitRefused}
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON, as POST /v1/verify answers")
	return cmd
}

// firstLine reads the first line of r, without its line ending. It reads at
// most a few kilobytes: a key is far shorter.
func firstLine(r io.Reader) (string, error) {
	if r == nil {
		return "", nil
	}
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("reading the key from standard input: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
