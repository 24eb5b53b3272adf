package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
)

// Exit statuses, the same for every command.
const (
	exitOK = 0
	// exitRefused: the command ran and the answer is no: verify rejected
	// the key, no key has the id, the input broke a rule of the Manager, the
	// key is revoked, the owner has too many keys.
	exitRefused = 1
	// exitTrouble: the command could not run: a usage error (unknown flag,
	// bad flag value, missing argument), bad configuration, or a database
	// that cannot be opened, reached or migrated.
	exitTrouble = 2
)

// exitStatusHelp documents the statuses above in --help.
const exitStatusHelp = `Exit status:
  0  success (verify: the key is valid)
  1  refused: verify rejected the key (invalid, expired or revoked), no key
     has that id, the input broke a rule (say, an invalid scope), the key is
     revoked, or the owner has too many keys
  2  trouble: a usage error (unknown flag, bad value, missing argument), bad
     configuration, a database that cannot be opened or reached, or a
     strict revoke or delete that not every server acknowledged in time
     (the change is applied)`

// commands holds the constructor of every subcommand of apikey. Each
// command's file registers its own from an init function, so adding a
// command is adding a file.
var commands []func(*app) *cobra.Command

func register(newCommand func(*app) *cobra.Command) { commands = append(commands, newCommand) }

// app is one invocation of the command: its streams, its environment and
// the database it opened. Every command reaches the outside world through
// it, so tests run commands in-process.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// now is the clock of the Manager and the base of relative --expires.
	now func() time.Time
	// terminal, when set, says whether standard input is a terminal (for
	// tests); nil means it is checked.
	terminal func() bool

	dbFlag    string // --db
	redisFlag string // --redis
	// The settings of the Manager, global flags (see config.go).
	configFlag      string // --config
	prefix          string // --prefix
	secretLength    int    // --secret-length
	maxKeysPerOwner int    // --max-keys-per-owner
	pepper          string // APIKEY_PEPPER or "pepper" in the config file
	strictFlag      bool   // --strict-revocation
	// defaultIdle is --default-inactivity-expiry (formerly serve's
	// --inactivity-expiry), and idle its value, read by checkGlobal: the
	// service's default inactivity expiry, which every command applies to
	// the states it reports and serve to verification.
	defaultIdle string
	idle        time.Duration
	// sources says where each setting of the command came from.
	sources map[string]source
	db      *database
	mgr     *apikey.Manager // closed (usage flushed) before the database
	rdb     *redis.Client   // the client of --redis, closed with the database
}

// run executes the command line args (without the program name) and
// returns the exit status. It prints results on stdout and at most one
// error line, prefixed "apikey: ", on stderr.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv, now: time.Now}
	return a.run(ctx, args)
}

func (a *app) run(ctx context.Context, args []string) int {
	root := a.rootCommand()
	root.SetArgs(args)
	// The audit log names the CLI as the actor of what it changes.
	err := root.ExecuteContext(apikey.WithActor(ctx, "cli"))
	if cerr := a.closeDB(); err == nil && cerr != nil {
		err = cerr
	}
	if err == nil {
		return exitOK
	}
	var c *codedError
	if errors.As(err, &c) && c.err == nil {
		return c.code // the command already said everything
	}
	fmt.Fprintln(a.stderr, errorLine(err))
	return exitCode(err)
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "apikey",
		Short: "Create, list, verify and revoke API keys",
		Long: `apikey manages API keys for machine clients. A key is shown once, when it is
created; only a hash of it is stored. Revocation is for ever.

Database (--db, APIKEY_DB or "db" in the config file):
  a file path or sqlite:PATH   an SQLite file, created on first use
                               (default ./apikey.db)
  postgres://... or postgresql://...
                               a PostgreSQL database
Every command that uses the database first applies the migrations it lacks.

Settings: every global flag below, and every flag of apikey serve, is also
read from the environment variable APIKEY_<FLAG> (--max-keys-per-owner is
APIKEY_MAX_KEYS_PER_OWNER) and from the JSON file of --config; the flag
wins over the variable, which wins over the file. See "apikey help
settings"; "apikey settings" prints them all.

Environment without a flag:
  APIKEY_PEPPER  server-side secret mixed into key hashes (HMAC-SHA256), at
                 least 16 bytes: either one secret (version 1) or a list
                 "2:newsecret,1:oldsecret" whose first entry is used for new
                 keys while the others keep verifying older ones ("pepper"
                 in the config file; no flag, which every user could see)

Output: results go to standard output, notes and the one error line to
standard error. With --json (every command has it), standard output holds
exactly one JSON value: the record the HTTP API answers with for the same
operation (a key, {"key": "...", ...} for a new or rolled key, a page
{"keys"|"events": [...], "next_cursor"}, usage, a verification), or the
report the command documents; errors stay on standard error, with the exit
status.

First run: "apikey serve" prints the address of the admin site and the
command that makes its first user.

` + exitStatusHelp,
		Version:            version(),
		SilenceUsage:       true,
		SilenceErrors:      true,
		DisableSuggestions: true,
		CompletionOptions:  cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetVersionTemplate("apikey {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	root.PersistentFlags().StringVar(&a.dbFlag, "db", "", `database: a file path, sqlite:PATH or a postgres:// URL (default $APIKEY_DB, else ./apikey.db)`)
	root.PersistentFlags().StringVar(&a.redisFlag, "redis", "", "Redis HOST:PORT: the commands publish the ids of the keys they change on the channel apikey:invalidate, so that servers run with the same Redis evict them at once")
	pf := root.PersistentFlags()
	pf.StringVar(&a.configFlag, configFlag, "", "JSON file of settings, read after the flags and the environment (see \"apikey help settings\")")
	pf.StringVar(&a.prefix, "prefix", "", "issuer prefix of new keys, 1 to 32 of a-z 0-9 _ (default ak)")
	pf.IntVar(&a.secretLength, "secret-length", 0, fmt.Sprintf("base62 characters in the secret of new keys, %d to %d (default %d)", apikey.MinSecretLength, apikey.MaxSecretLength, apikey.DefaultSecretLength))
	pf.IntVar(&a.maxKeysPerOwner, "max-keys-per-owner", 0, "most keys an owner may hold that are not revoked; 0 is unlimited")
	pf.StringVar(&a.defaultIdle, "default-inactivity-expiry", "", "expire keys unused for this long unless a key has a policy of its own: 90d, 2w, 36h (default none); serve refuses such keys and every command shows them expired")
	pf.BoolVar(&a.strictFlag, "strict-revocation", false, "make revoke and delete (from the CLI, and through the API of serve) wait until every running server has applied them")
	pf.StringVar(&a.pepper, "pepper", "", "")
	_ = pf.MarkHidden("pepper")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if cmd.Name() == "help" {
			return nil
		}
		if err := a.applySettings(cmd); err != nil {
			return err
		}
		return a.checkGlobal()
	}
	// Cobra's own help command repeats an unknown topic, which could be a
	// key typed in the wrong place.
	root.SetHelpCommand(&cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 && args[0] == "settings" {
				_, err := fmt.Fprintln(a.stdout, settingsHelp)
				return err
			}
			target, _, err := root.Find(args)
			if target == nil || err != nil {
				return usagef("unknown help topic: run \"apikey help\" for the list of commands")
			}
			return target.Help()
		},
	})
	for _, newCommand := range commands {
		root.AddCommand(newCommand(a))
	}
	annotateSettings(root)
	return root
}

// codedError carries an exit status. A nil err means the command has
// already printed its answer and only the status remains.
type codedError struct {
	code int
	err  error
}

func (e *codedError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *codedError) Unwrap() error { return e.err }

// usageError marks err as a usage error (exit status 2).
func usageError(err error) error { return &codedError{code: exitTrouble, err: err} }

// usagef formats a usage error (exit status 2).
func usagef(format string, args ...any) error { return usageError(fmt.Errorf(format, args...)) }

// refusedf formats a refusal (exit status 1).
func refusedf(format string, args ...any) error {
	return &codedError{code: exitRefused, err: fmt.Errorf(format, args...)}
}

// exitCode maps an error to an exit status.
func exitCode(err error) int {
	var c *codedError
	switch {
	case errors.As(err, &c):
		return c.code
	case errors.Is(err, apikey.ErrUnavailable):
		return exitTrouble
	case errors.Is(err, apikey.ErrNotFound), errors.Is(err, apikey.ErrInvalidInput),
		errors.Is(err, apikey.ErrRevoked), errors.Is(err, apikey.ErrFrozen), errors.Is(err, apikey.ErrExpired),
		errors.Is(err, apikey.ErrInvalidKey), errors.Is(err, apikey.ErrTooManyKeys),
		errors.Is(err, apikey.ErrWebhookNotFound), errors.Is(err, apikey.ErrDeliveryNotFound):
		return exitRefused
	default:
		return exitTrouble // cobra's own usage errors, configuration, the database
	}
}

// errorLine renders err as the one line printed on stderr: prefixed
// "apikey: " once, on a single line, with anything shaped like a key cut
// down to its id, so that no error ever repeats a secret (say, a key typed
// where a command name was expected).
func errorLine(err error) string {
	msg := strings.TrimSpace(err.Error())
	for strings.HasPrefix(msg, "apikey: ") {
		msg = strings.TrimPrefix(msg, "apikey: ")
	}
	msg = strings.Join(strings.Fields(msg), " ")
	msg = apikey.Redact(msg)
	return "apikey: " + msg
}

// oneArg requires exactly one positional argument, described by what.
func oneArg(what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usagef("%s needs exactly one argument: %s", cmd.Name(), what)
		}
		return nil
	}
}

// noArgs refuses positional arguments.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments (got %d)", cmd.Name(), len(args))
	}
	return nil
}
