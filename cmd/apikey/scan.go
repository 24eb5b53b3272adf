package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/go-apikey/apikey"
)

func init() { register(newScanCommand) }

// Statuses of a key found by scan.
const (
	statusLive      = "live"      // in the database, active
	statusExpired   = "expired"   // in the database, expired (an expiry can still be lifted)
	statusRevoked   = "revoked"   // in the database, revoked for ever
	statusUnknown   = "unknown"   // not a key of the database (another database's, or deleted)
	statusUnchecked = "unchecked" // --offline: not looked up
)

// scanOptions are the flags of scan.
type scanOptions struct {
	offline bool
	asJSON  bool
	revoke  bool
	yes     bool
}

func newScanCommand(a *app) *cobra.Command {
	var o scanOptions
	cmd := &cobra.Command{
		Use:   "scan [--offline] [--json] [--revoke [--yes]] PATH...",
		Short: "Find keys in files, for pre-commit hooks and CI",
		Long: `Find apikey keys in files and directories (recursively; .git directories,
binary files, symbolic links inside directories and special files are
skipped; "-" reads standard input). Only real keys are reported: every match
must have a valid checksum, so random text never counts. The key itself is
never printed, only its prefix and id ("ak_3fZ9q0LmA1bc_…").

Each key found is printed as "PATH:LINE: KEY STATUS", where STATUS says what
the database (--db) knows of it:
  live       an active key: revoke it (--revoke), then remove it from the file
  expired    an expired key; its expiry could still be lifted
  revoked    revoked for ever; harmless
  unknown    not a key of this database (another database's, or deleted)
  unchecked  --offline: the database was not asked
The database is opened only when a key is found, and never created: a
missing SQLite file is an error (use --offline to scan without a database).

With --revoke, the live and expired keys found are revoked, after a
confirmation asked on the terminal; --yes skips it. Without a terminal on
standard input, --revoke needs --yes.

With --json, prints {"files": N, "findings": [{"path", "line", "column",
"key", "key_id", "status", "revoked_now"}]}.

Exit status:
  0  no key found, or only revoked keys
  1  a key that is not revoked was found: live, expired, unknown or
     unchecked (after --revoke, the keys it revoked count as revoked)
  2  trouble: a path that cannot be read, a usage error, or a database that
     cannot be opened or reached (keys found are still printed)`,
		Example: `  apikey scan --offline .
  git diff --cached | apikey scan --offline -
  apikey scan --db postgres://apikey@db/apikey --revoke --yes ./leaked-logs`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("scan needs at least one path (a file, a directory, or - for standard input)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.check(a, args); err != nil {
				return err
			}
			return a.scan(cmd.Context(), o, args)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.offline, "offline", false, "do not look the keys up in the database (every key found is \"unchecked\")")
	f.BoolVar(&o.asJSON, "json", false, "print the findings as JSON")
	f.BoolVar(&o.revoke, "revoke", false, "revoke the live and expired keys found, after confirmation")
	f.BoolVar(&o.yes, "yes", false, "with --revoke: do not ask for confirmation")
	return cmd
}

// check validates the flags before anything is read.
func (o *scanOptions) check(a *app, paths []string) error {
	switch {
	case o.revoke && o.offline:
		return usagef("--revoke and --offline cannot be combined: revoking needs the database")
	case o.yes && !o.revoke:
		return usagef("--yes goes with --revoke")
	case o.revoke && !o.yes && slices.Contains(paths, "-"):
		return usagef("--revoke reads its confirmation from standard input, which - is scanning: add --yes")
	case o.revoke && !o.yes && !a.isTerminal():
		return usagef("--revoke asks for confirmation on a terminal, and standard input is not one: add --yes to revoke without asking")
	}
	return nil
}

// isTerminal reports whether standard input is a terminal.
func (a *app) isTerminal() bool {
	if a.terminal != nil {
		return a.terminal()
	}
	return isTerminal(a.stdin)
}

// finding is one key found in a file.
type finding struct {
	Path       string `json:"path"`
	Line       int    `json:"line"`
	Column     int    `json:"column"`
	Key        string `json:"key"` // prefix_id_…, never the secret
	KeyID      string `json:"key_id"`
	Status     string `json:"status"`
	RevokedNow bool   `json:"revoked_now,omitempty"`

	token string // the plaintext, never printed
	file  int    // the file's rank, in the order the paths were given and walked
}

// scanReport is the JSON output of scan.
type scanReport struct {
	Files    int        `json:"files"`
	Findings []*finding `json:"findings"`
}

func (a *app) scan(ctx context.Context, o scanOptions, paths []string) error {
	findings, files, troubles := a.scanPaths(ctx, paths)
	if err := ctx.Err(); err != nil {
		return err
	}
	var lookupErr error
	if len(findings) > 0 && !o.offline {
		lookupErr = a.lookUp(ctx, findings)
	}
	if lookupErr != nil {
		o.revoke = false
	}
	if !o.asJSON {
		for _, f := range findings {
			fmt.Fprintf(a.stdout, "%s:%d: %s %s\n", f.Path, f.Line, f.Key, f.Status)
		}
	}
	if o.revoke {
		if err := a.revokeFound(ctx, o, findings); err != nil {
			return err
		}
	}
	if o.asJSON {
		if err := writeJSON(a.stdout, scanReport{Files: files, Findings: findings}); err != nil {
			return err
		}
	}
	a.scanSummary(findings, files)
	if lookupErr != nil {
		return lookupErr
	}
	if troubles > 0 {
		return &codedError{code: exitTrouble}
	}
	for _, f := range findings {
		if f.Status != statusRevoked {
			return &codedError{code: exitRefused}
		}
	}
	return nil
}

// scanSummary prints one line on standard error when keys were found.
func (a *app) scanSummary(findings []*finding, files int) {
	if len(findings) == 0 {
		return
	}
	counts := map[string]int{}
	keys := map[string]bool{}
	inFiles := map[string]bool{}
	for _, f := range findings {
		counts[f.Status]++
		keys[f.KeyID] = true
		inFiles[f.Path] = true
	}
	var parts []string
	for _, s := range []string{statusLive, statusExpired, statusRevoked, statusUnknown, statusUnchecked} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	fmt.Fprintf(a.stderr, "scan: %s of %s in %s (%d scanned): %s\n", plural(len(findings), "finding"), plural(len(keys), "key"),
		plural(len(inFiles), "file"), files, strings.Join(parts, ", "))
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// lookUp sets the status of every finding from the database, looking each
// distinct key up once.
func (a *app) lookUp(ctx context.Context, findings []*finding) error {
	loc, err := a.location()
	if err != nil {
		return err
	}
	if loc.driver == "sqlite" {
		if _, err := os.Stat(loc.target); errors.Is(err, fs.ErrNotExist) {
			return usagef("no database at %s (scan never creates one): give --db, or --offline to scan without a database", loc.target)
		}
	}
	m, err := a.manager(ctx)
	if err != nil {
		return err
	}
	status := map[string]string{}
	for _, f := range findings {
		if s, ok := status[f.token]; ok {
			f.Status = s
			continue
		}
		k, err := m.Identify(ctx, f.token)
		switch {
		case errors.Is(err, apikey.ErrInvalidKey):
			f.Status = statusUnknown
		case err != nil:
			return err
		case k.State == apikey.StateActive:
			f.Status = statusLive
		case k.State == apikey.StateExpired:
			f.Status = statusExpired
		default:
			f.Status = statusRevoked
		}
		status[f.token] = f.Status
	}
	return nil
}

// revokeFound revokes the live and expired keys among findings, after
// asking unless o.yes.
func (a *app) revokeFound(ctx context.Context, o scanOptions, findings []*finding) error {
	var ids []string
	for _, f := range findings {
		if (f.Status == statusLive || f.Status == statusExpired) && !slices.Contains(ids, f.KeyID) {
			ids = append(ids, f.KeyID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	if !o.yes {
		fmt.Fprintf(a.stderr, "Revoke %s (%s)? Revocation is for ever. [y/N] ", plural(len(ids), "key"), strings.Join(ids, ", "))
		answer, err := bufio.NewReader(a.stdin).ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && answer != "") {
			fmt.Fprintln(a.stderr)
			answer = ""
		}
		if yes := strings.ToLower(strings.TrimSpace(answer)); yes != "y" && yes != "yes" {
			fmt.Fprintln(a.stderr, "scan: nothing revoked")
			return nil
		}
	}
	m, err := a.manager(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if _, err := m.Revoke(ctx, id); err != nil {
			return keyError(err, id)
		}
		for _, f := range findings {
			if f.KeyID == id {
				f.Status, f.RevokedNow = statusRevoked, true
			}
		}
		if !o.asJSON {
			fmt.Fprintf(a.stdout, "revoked: %s\n", id)
		}
	}
	return nil
}

// scanPaths scans every path, directories recursively, on a few
// goroutines, and returns the findings in the order of the paths (files
// of a directory in lexical order), then of the lines, with the number of
// files scanned and the number of paths that could not be read (each
// reported on standard error).
func (a *app) scanPaths(ctx context.Context, paths []string) (findings []*finding, files, troubles int) {
	type job struct {
		rank int
		path string
	}
	jobs := make(chan job)
	var (
		mu   sync.Mutex
		errs []string
	)
	trouble := func(msg string) {
		mu.Lock()
		errs = append(errs, msg)
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for range max(1, runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for j := range jobs {
				found, scanned, err := a.scanFile(j.path)
				mu.Lock()
				if scanned {
					files++
				}
				for _, f := range found {
					f.file = j.rank
					findings = append(findings, f)
				}
				mu.Unlock()
				if err != nil {
					trouble(fmt.Sprintf("cannot read %s: %v", j.path, rootCause(err)))
				}
			}
		})
	}
	rank := 0
	send := func(path string) bool {
		select {
		case jobs <- job{rank, path}:
			rank++
			return true
		case <-ctx.Done():
			return false
		}
	}
walk:
	for _, root := range paths {
		if root == "-" {
			if !send(root) {
				break
			}
			continue
		}
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			switch {
			case err != nil:
				trouble(fmt.Sprintf("cannot read %s: %v", path, rootCause(err)))
				if d != nil && d.IsDir() {
					return fs.SkipDir
				}
				return nil
			case d.IsDir() && d.Name() == ".git" && path != root:
				return fs.SkipDir
			case d.IsDir():
				return nil
			case d.Type()&fs.ModeSymlink != 0 && path != root:
				return nil // not followed inside a directory
			case !d.Type().IsRegular() && d.Type()&fs.ModeSymlink == 0:
				return nil // a device, a pipe, a socket
			}
			if !send(path) {
				return fs.SkipAll
			}
			return nil
		})
		if err != nil || ctx.Err() != nil {
			break walk
		}
	}
	close(jobs)
	wg.Wait()
	for _, msg := range errs {
		fmt.Fprintln(a.stderr, errorLine(errors.New(msg)))
	}
	slices.SortStableFunc(findings, func(x, y *finding) int {
		return cmp.Or(cmp.Compare(x.file, y.file), cmp.Compare(x.Line, y.Line), cmp.Compare(x.Column, y.Column))
	})
	return findings, files, len(errs)
}

// rootCause drops the path that an *fs.PathError repeats.
func rootCause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// scanFile scans one file ("-": standard input). scanned is false for a
// binary file, which is skipped.
func (a *app) scanFile(path string) (found []*finding, scanned bool, err error) {
	var r io.Reader
	if path == "-" {
		r = a.stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, false, err
		}
		defer f.Close()
		if fi, err := f.Stat(); err != nil {
			return nil, false, err
		} else if !fi.Mode().IsRegular() {
			return nil, false, nil // a symbolic link given as a path, to something special
		}
		r = f
	}
	binary, err := scanText(r, func(line, col int, m apikey.TokenMatch, plain []byte) {
		found = append(found, &finding{
			Path: path, Line: line, Column: col, Key: m.Token.String(), KeyID: m.Token.ID,
			Status: statusUnchecked, token: string(plain),
		})
	})
	return found, !binary, err
}

// Sizes of scanText.
const (
	scanChunk = 1 << 20
	// scanCarry bytes are kept from one chunk to the next: a token that
	// the chunk's end may cut lies in them.
	scanCarry = apikey.MaxTokenLength + 1
	// binarySniff is how much of a file is searched for a NUL byte, as git
	// does, to tell binary files.
	binarySniff = 8000
)

// scanText calls found for each token in r, in order, with its line and
// column (1-based, in bytes) and its plaintext. It reads r in chunks of
// scanChunk bytes, keeping scanCarry bytes between chunks, so that memory
// stays small whatever the size of r. It reports binary, and scans
// nothing, when the first binarySniff bytes hold a NUL byte.
func scanText(r io.Reader, found func(line, col int, m apikey.TokenMatch, plain []byte)) (binary bool, err error) {
	buf := make([]byte, scanCarry+scanChunk)
	var (
		n         int // bytes in buf
		base      int // offset in r of buf[0]
		counted   int // offset in r up to which lines are counted
		line      = 1 // the line at counted
		lineStart int // offset in r of the start of that line
		nextStart int // matches must start here or later: they never overlap
	)
	// count moves counted to off, counting the lines in between.
	count := func(off int) {
		seg := buf[counted-base : off-base]
		if nl := bytes.Count(seg, []byte{'\n'}); nl > 0 {
			line += nl
			lineStart = counted + bytes.LastIndexByte(seg, '\n') + 1
		}
		counted = off
	}
	for first := true; ; first = false {
		k, err := io.ReadFull(r, buf[n:])
		n += k
		eof := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
		if err != nil && !eof {
			return false, err
		}
		if first && bytes.IndexByte(buf[:min(n, binarySniff)], 0) >= 0 {
			return true, nil
		}
		data := buf[:n]
		for m := range apikey.FindTokens(data) {
			if !eof && m.End == n {
				break // it may go on in the next chunk: scanned again there
			}
			if base+m.Start < nextStart {
				continue // found in the previous chunk
			}
			count(base + m.Start)
			found(line, base+m.Start-lineStart+1, m, data[m.Start:m.End])
			nextStart = base + m.End
		}
		if eof {
			return false, nil
		}
		cut := n - scanCarry
		if counted < base+cut {
			count(base + cut)
		}
		copy(buf, data[cut:])
		base += cut
		n = scanCarry
	}
}
