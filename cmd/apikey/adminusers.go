package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/cmd/apikey/internal/admin"
)

// newAdminUsersCommand is "apikey admin users": the accounts of the admin
// site.
func newAdminUsersCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "users",
		Short: "List, disable, enable, unlock and reset the users of the admin site",
		Long: `Manage the accounts of the admin site. A user has a role: admin (every page
and action) or viewer (sees everything, changes nothing but their own
password and two-factor setup). Disabling a user ends their sessions at
once and refuses their logins until they are enabled again; resetting a
password ends their sessions too.

Login throttling (5 failures per account and address in 15 minutes, and
100 per address) lives in the memory of the running server: it ends by
itself after 15 minutes, or when the server restarts. "unlock" ends it at
once for one account, on every server using the database: their failed
logins so far no longer count. The limit of 100 failures per address
stays.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newUsersListCommand(a), newUsersStateCommand(a, "disable"), newUsersStateCommand(a, "enable"),
		newUsersResetCommand(a), newUsersRoleCommand(a), newUsersTwoFactorOffCommand(a), newUsersUnlockCommand(a))
	return cmd
}

// accounts opens the database and returns its account store.
func (a *app) accounts(ctx context.Context) (admin.AccountStore, error) {
	db, err := a.openDB(ctx)
	if err != nil {
		return nil, err
	}
	if err := db.migrate(ctx); err != nil {
		return nil, err
	}
	return db.accounts, nil
}

// userError phrases a store error about the user email.
func userError(err error, email string) error {
	switch {
	case errors.Is(err, apikey.ErrNotFound):
		return refusedf("no admin user %s", email)
	case errors.Is(err, admin.ErrBadUser):
		return refusedf("%s", strings.TrimPrefix(err.Error(), admin.ErrBadUser.Error()+": "))
	}
	return err
}

func newUsersListCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list [--json]",
		Short: "List the users of the admin site",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			acc, err := a.accounts(cmd.Context())
			if err != nil {
				return err
			}
			users, err := acc.Users(cmd.Context())
			if err != nil {
				return err
			}
			if users == nil {
				users = []admin.User{}
			}
			if asJSON {
				return writeJSON(a.stdout, map[string]any{"users": users})
			}
			if len(users) == 0 {
				fmt.Fprintln(a.stderr, "No admin users: make one with apikey admin create-user EMAIL.")
				return nil
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "EMAIL\tROLE\tSTATE\tTWO-FACTOR\tCREATED")
			for _, u := range users {
				state := "active"
				if u.DisabledAt != nil {
					state = "disabled since " + formatTime(u.DisabledAt, "-")
				}
				tf := "off"
				if u.TwoFactor {
					tf = "on"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Email, u.Role, state, tf, formatTime(&u.CreatedAt, "-"))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print JSON: {"users": [{"email", "role", "created_at", "disabled_at", "two_factor"}]}`)
	return cmd
}

// newUsersStateCommand is "disable" or "enable".
func newUsersStateCommand(a *app, verb string) *cobra.Command {
	var asJSON bool
	short := "Disable a user: end their sessions and refuse their logins"
	if verb == "enable" {
		short = "Enable a disabled user again"
	}
	cmd := &cobra.Command{
		Use:   verb + " EMAIL [--json]",
		Short: short,
		Args:  oneArg("an email address"),
		RunE: func(cmd *cobra.Command, args []string) error {
			email := strings.ToLower(strings.TrimSpace(args[0]))
			acc, err := a.accounts(cmd.Context())
			if err != nil {
				return err
			}
			var at *time.Time
			if verb == "disable" {
				now := a.now().UTC()
				at = &now
			}
			if err := acc.SetDisabled(cmd.Context(), email, at); err != nil {
				return userError(err, email)
			}
			u, err := acc.User(cmd.Context(), email)
			if err != nil {
				return userError(err, email)
			}
			if asJSON {
				return writeJSON(a.stdout, u)
			}
			_, err = fmt.Fprintf(a.stdout, "%sd admin user %s\n", verb, email)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the user as JSON")
	return cmd
}

func newUsersResetCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "reset-password EMAIL [--json]",
		Short: "Set a new password for a user and end their sessions",
		Long: fmt.Sprintf(`Set a new password for a user of the admin site, read as by create-user: at
a prompt, twice and without echo, when standard input is a terminal, else
its first line. At least %d characters. The user's sessions end.`, admin.MinPasswordLength),
		Args: oneArg("an email address"),
		RunE: func(cmd *cobra.Command, args []string) error {
			email := strings.ToLower(strings.TrimSpace(args[0]))
			acc, err := a.accounts(cmd.Context())
			if err != nil {
				return err
			}
			if _, err := acc.User(cmd.Context(), email); err != nil {
				return userError(err, email)
			}
			password, err := a.readPassword(email)
			if err != nil {
				return err
			}
			if err := admin.SetPassword(cmd.Context(), acc, email, password, admin.PasswordParams{}); err != nil {
				return userError(err, email)
			}
			if asJSON {
				return writeJSON(a.stdout, map[string]any{"email": email, "password_reset": true})
			}
			_, err = fmt.Fprintf(a.stdout, "new password set for admin user %s; their sessions have ended\n", email)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print JSON: {"email", "password_reset": true}`)
	return cmd
}

func newUsersRoleCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "set-role EMAIL admin|viewer [--json]",
		Short: "Make a user an admin or a read-only viewer",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usagef("set-role needs two arguments: an email address and a role (admin or viewer)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			email, role := strings.ToLower(strings.TrimSpace(args[0])), args[1]
			if err := admin.CheckRole(role); err != nil {
				return usagef("invalid role %q: want admin or viewer", role)
			}
			acc, err := a.accounts(cmd.Context())
			if err != nil {
				return err
			}
			if err := acc.SetRole(cmd.Context(), email, role); err != nil {
				return userError(err, email)
			}
			u, err := acc.User(cmd.Context(), email)
			if err != nil {
				return userError(err, email)
			}
			if asJSON {
				return writeJSON(a.stdout, u)
			}
			_, err = fmt.Fprintf(a.stdout, "admin user %s is now %s\n", email, role)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the user as JSON")
	return cmd
}

func newUsersTwoFactorOffCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "reset-two-factor EMAIL [--json]",
		Short: "Remove a user's two-factor setup (a lost phone)",
		Long: `Remove the two-factor (TOTP) secret of a user who lost their authenticator:
they sign in with their password alone, and set up two-factor again from
their account page (which the site requires when serve runs with
--require-two-factor).`,
		Args: oneArg("an email address"),
		RunE: func(cmd *cobra.Command, args []string) error {
			email := strings.ToLower(strings.TrimSpace(args[0]))
			acc, err := a.accounts(cmd.Context())
			if err != nil {
				return err
			}
			if err := acc.SetTOTPSecret(cmd.Context(), email, ""); err != nil {
				return userError(err, email)
			}
			if asJSON {
				u, err := acc.User(cmd.Context(), email)
				if err != nil {
					return userError(err, email)
				}
				return writeJSON(a.stdout, u)
			}
			_, err = fmt.Fprintf(a.stdout, "two-factor removed for admin user %s\n", email)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the user as JSON")
	return cmd
}

func newUsersUnlockCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "unlock EMAIL [--json]",
		Short: "End a user's login throttling: their failed logins so far no longer count",
		Long: `Unlock an account of the admin site that failed logins locked out (5
failures per account and address in 15 minutes). The throttle lives in
the memory of the running servers; the unlock is recorded in the database,
where every server reads it at the account's next login attempt, and the
account's failures before it no longer count: the right password gets in
at once. Later failures count again. The limit of 100 failures per client
address, whatever the accounts, stays as it is.`,
		Args: oneArg("an email address"),
		RunE: func(cmd *cobra.Command, args []string) error {
			email := strings.ToLower(strings.TrimSpace(args[0]))
			acc, err := a.accounts(cmd.Context())
			if err != nil {
				return err
			}
			if err := acc.Unlock(cmd.Context(), email, a.now().UTC()); err != nil {
				return userError(err, email)
			}
			u, err := acc.User(cmd.Context(), email)
			if err != nil {
				return userError(err, email)
			}
			if asJSON {
				return writeJSON(a.stdout, u)
			}
			_, err = fmt.Fprintf(a.stdout, "unlocked admin user %s: their failed logins so far no longer count\n", email)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print the user as JSON, with "unlocked_at"`)
	return cmd
}
