package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/go-apikey/apikey/cmd/apikey/internal/admin"
)

func init() { register(newAdminCommand) }

func newAdminCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Manage the users of the admin site",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newCreateUserCommand(a), newAdminUsersCommand(a))
	return cmd
}

func newCreateUserCommand(a *app) *cobra.Command {
	var role string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "create-user EMAIL [--role admin|viewer] [--json]",
		Short: "Create a user of the admin site",
		Long: fmt.Sprintf(`Create a user who can sign in to the admin site (/admin/ of apikey serve).

The password is read from standard input. When standard input is a terminal,
it is asked for twice at a prompt on standard error, without echo (through
stty, where available). Otherwise the first line of standard input is the
password, so that scripts can pipe it in:

  printf '%%s\n' "$ADMIN_PASSWORD" | apikey admin create-user alice@example.com

The password must be at least %d characters long; it is stored as an
argon2id hash. Emails are case-insensitive. An existing user is refused
(exit status 1). --role viewer makes a read-only user (default admin).`, admin.MinPasswordLength),
		Args: oneArg("an email address"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			email := strings.ToLower(strings.TrimSpace(args[0]))
			if err := admin.CheckRole(role); err != nil {
				return usagef("invalid --role %q: want admin or viewer", role)
			}
			if err := admin.CheckEmail(email); err != nil {
				return refusedf("%s", strings.TrimPrefix(err.Error(), admin.ErrBadUser.Error()+": "))
			}
			password, err := a.readPassword(email)
			if err != nil {
				return err
			}
			db, err := a.openDB(ctx)
			if err != nil {
				return err
			}
			if err := db.migrate(ctx); err != nil {
				return err
			}
			err = admin.CreateUser(ctx, db.admin, email, password, admin.PasswordParams{}, a.now())
			switch {
			case errors.Is(err, admin.ErrUserExists):
				return refusedf("an admin user %s already exists", email)
			case errors.Is(err, admin.ErrBadUser):
				return refusedf("%s", strings.TrimPrefix(err.Error(), admin.ErrBadUser.Error()+": "))
			case err != nil:
				return fmt.Errorf("cannot create the admin user: %w", err)
			}
			if role != admin.RoleAdmin {
				if err := db.accounts.SetRole(ctx, email, role); err != nil {
					return err
				}
			}
			if asJSON {
				u, err := db.accounts.User(ctx, email)
				if err != nil {
					return err
				}
				return writeJSON(a.stdout, u)
			}
			_, err = fmt.Fprintf(a.stdout, "created admin user %s\n", email)
			return err
		},
	}
	cmd.Flags().StringVar(&role, "role", admin.RoleAdmin, "admin (every page and action) or viewer (read-only)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the user as JSON")
	return cmd
}

// readPassword reads the password of a new admin user from standard
// input: at a prompt, twice and without echo, when it is a terminal, else
// its first line.
func (a *app) readPassword(email string) (string, error) {
	tty := isTerminal(a.stdin)
	in := bufio.NewReader(a.stdin)
	if !tty {
		pw, err := readLine(in)
		if err != nil {
			return "", err
		}
		if pw == "" {
			return "", refusedf("no password on standard input: pipe it in, one line, or run the command in a terminal")
		}
		return pw, nil
	}
	restore, ok := noEcho(a.stdin.(*os.File))
	if !ok {
		return "", refusedf("cannot hide the password as it is typed (stty failed): pipe it on standard input instead")
	}
	defer restore()
	fmt.Fprintf(a.stderr, "Password for %s (at least %d characters): ", email, admin.MinPasswordLength)
	pw, err := readLine(in)
	fmt.Fprintln(a.stderr)
	if err != nil {
		return "", err
	}
	if len(pw) < admin.MinPasswordLength {
		return "", refusedf("the password must be at least %d characters long", admin.MinPasswordLength)
	}
	fmt.Fprint(a.stderr, "Repeat the password: ")
	again, err := readLine(in)
	fmt.Fprintln(a.stderr)
	if err != nil {
		return "", err
	}
	if again != pw {
		return "", refusedf("the passwords do not match")
	}
	return pw, nil
}

// readLine reads one line without its line ending; a last line without
// one counts.
func readLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		if errors.Is(err, io.EOF) {
			return "", nil
		}
		return "", fmt.Errorf("reading the password: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// noEcho turns the terminal's echo off with stty and returns the function
// that turns it back on, which also runs if the user interrupts the prompt
// (Ctrl-C). ok is false, and nothing changed, where stty failed.
// golang.org/x/term would do this without stty, but it is not a dependency
// of this module.
func noEcho(tty *os.File) (restore func(), ok bool) {
	off := exec.Command("stty", "-echo")
	off.Stdin = tty
	if off.Run() != nil {
		return nil, false
	}
	echo := func() {
		on := exec.Command("stty", "echo")
		on.Stdin = tty
		_ = on.Run()
	}
	interrupted := make(chan os.Signal, 1)
	signal.Notify(interrupted, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-interrupted:
			echo()
			os.Exit(130)
		case <-done:
		}
	}()
	return func() {
		signal.Stop(interrupted)
		close(done)
		echo()
	}, true
}
