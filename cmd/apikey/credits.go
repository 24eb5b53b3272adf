package main

import (
	"errors"
	"strconv"

	"github.com/go-apikey/apikey"
	"github.com/spf13/cobra"
)

func init() { register(newCreditsCommand) }

func newCreditsCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "credits ID set AMOUNT | add AMOUNT | refund IDEMPOTENCY-KEY",
		Short: "Set, add to or refund the usage credits of a key",
		Long: `Change the balance of usage credits of a key and print it.

  set AMOUNT               the balance becomes AMOUNT (0 or more); a key
                           without a balance gets one
  add AMOUNT               adds AMOUNT, which may be negative (write it
                           after --: credits ID add -- -50); the balance
                           never goes below 0
  refund IDEMPOTENCY-KEY   gives back what the spend made with that
                           idempotency key took (POST /v1/verify
                           "idempotency_key"), once

The refill schedule is kept; change it with apikey update --refill. The
credits of an owner are changed with apikey owner credits.`,
		Example: `  apikey credits 3fZ9q0LmA1bc set 1000
  apikey credits 3fZ9q0LmA1bc add 500
  apikey credits 3fZ9q0LmA1bc refund order-1234`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 3 {
				return usagef("credits needs three arguments: a key id, set, add or refund, and an amount or idempotency key")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if err := checkID(id); err != nil {
				return err
			}
			adj, err := creditAdjustment(args[1], args[2], true)
			if err != nil {
				return err
			}
			adj.KeyID = id
			m, err := a.manager(cmd.Context())
			if err != nil {
				return err
			}
			c, err := m.AdjustCredits(cmd.Context(), adj)
			if err != nil {
				if err := belowZero(err, adj); err != nil {
					return err
				}
				if adj.Op == apikey.CreditRefund && errorIsNotFound(err) {
					if _, gerr := m.Get(cmd.Context(), id); gerr == nil {
						return refusedf("key %s made no spend with idempotency key %q in the last %v", id, adj.IdempotencyKey, apikey.IdempotencyWindow)
					}
				}
				return keyError(err, id)
			}
			if asJSON {
				return writeJSON(a.stdout, c)
			}
			return writeCredits(a.stdout, c)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// creditAdjustment reads the operation and argument of credits and owner
// credits.
func creditAdjustment(op, arg string, refund bool) (apikey.CreditAdjustment, error) {
	adj := apikey.CreditAdjustment{Op: apikey.CreditOp(op)}
	switch adj.Op {
	case apikey.CreditSet, apikey.CreditAdd:
		n, err := strconv.ParseInt(arg, 10, 64)
		if err != nil {
			return adj, usagef("invalid amount %q: want a whole number", arg)
		}
		if adj.Op == apikey.CreditSet && n < 0 {
			return adj, usagef("invalid amount %d: set takes 0 or more", n)
		}
		adj.Amount = n
	case apikey.CreditRefund:
		if !refund {
			return adj, usagef("an owner's credits cannot be refunded: refund the spend of a key with apikey credits ID refund")
		}
		if !apikey.ValidIdempotencyKey(arg) {
			return adj, usagef("invalid idempotency key %q: want 1 to 255 printable ASCII characters", arg)
		}
		adj.IdempotencyKey = arg
	default:
		if refund {
			return adj, usagef("unknown operation %q: want set, add or refund", op)
		}
		return adj, usagef("unknown operation %q: want set or add", op)
	}
	return adj, nil
}

// belowZero phrases the refusal of an add that would take a balance below
// zero, which stores report as a bare apikey.ErrInvalidInput; it returns nil
// for any other error.
func belowZero(err error, adj apikey.CreditAdjustment) error {
	var ve *apikey.ValidationError
	if adj.Op != apikey.CreditAdd || !errors.Is(err, apikey.ErrInvalidInput) || errors.As(err, &ve) {
		return nil
	}
	return refusedf("cannot add %d: the balance would go below zero", adj.Amount)
}
