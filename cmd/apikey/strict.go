package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/spf13/cobra"
)

// strictEnv is the environment variable that makes revoke and delete, and
// the API of serve, strict by default.
const strictEnv = "APIKEY_STRICT_REVOCATION"

// strictFromEnv reads the setting --strict-revocation (flag,
// APIKEY_STRICT_REVOCATION or config file; see config.go).
func (a *app) strictFromEnv() (bool, error) {
	return a.strictFlag, nil
}

// addStrictFlag adds --strict to a command that changes one key.
func addStrictFlag(cmd *cobra.Command, strict *bool) {
	cmd.Flags().BoolVar(strict, "strict", false,
		"wait until every running server has applied the change (default $"+strictEnv+")")
}

// strictChange runs change, a revoke or delete, on the key id, then, when
// the command is strict (--strict, else APIKEY_STRICT_REVOCATION), waits
// until every live server recorded in the database has applied it, and
// reports how many did on stdout unless quiet. The key (nil for a delete)
// comes back even when the wait failed: the change is applied.
func (a *app) strictChange(cmd *cobra.Command, id string, flag bool, quiet bool,
	change func(m *apikey.Manager, ctx context.Context, id string) (*apikey.Key, error),
	report func(k *apikey.Key) error) error {
	ctx := cmd.Context()
	strict, err := a.strictFromEnv()
	if err != nil {
		return err
	}
	if cmd.Flags().Changed("strict") {
		strict = flag
	}
	var supported bool
	k, err := a.onKey(ctx, id, func(m *apikey.Manager, ctx context.Context, id string) (*apikey.Key, error) {
		if supported = m.StrictSupported(); strict && !supported {
			return nil, apikey.ErrStrictUnsupported
		}
		return change(m, apikey.WithStrict(ctx, false), id)
	})
	if err != nil {
		return err
	}
	if err := report(k); err != nil || !strict {
		return err
	}
	ack, err := a.mgr.WaitApplied(ctx)
	if err != nil {
		return err
	}
	if quiet {
		return nil
	}
	_, err = fmt.Fprintf(a.stdout, "acknowledged by %s in %v\n", instances(len(ack.Instances)), ack.Waited.Round(time.Millisecond))
	return err
}

func instances(n int) string {
	if n == 1 {
		return "1 instance"
	}
	return strconv.Itoa(n) + " instances"
}
