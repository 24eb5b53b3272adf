package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/go-apikey/apikey"
)

func init() { register(newImportCommand) }

func newImportCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Import keys made by another system",
		Long: `Import keys made by another system, keeping them valid for their clients.
"apikey import drf" imports the keys of Django REST Framework API Key.`,
		Args: func(cmd *cobra.Command, args []string) error {
			return usagef("import needs a source system: drf")
		},
		RunE: func(*cobra.Command, []string) error { return nil },
	}
	cmd.AddCommand(newImportDRFCommand(a))
	return cmd
}

// drfOptions are the flags of "import drf".
type drfOptions struct {
	table       string
	ownerColumn string
	ignore      []string
	scopes      []string
	batch       int
	dryRun      bool
	asJSON      bool
}

func newImportDRFCommand(a *app) *cobra.Command {
	var o drfOptions
	cmd := &cobra.Command{
		Use:   "drf SOURCE [--table T] [--owner-column C] [--ignore-column C]... [--scope S]... [--dry-run] [--json]",
		Short: "Import the keys of Django REST Framework API Key",
		Long: `Import the keys of djangorestframework-api-key (DRF API Key) into the
database, so that every client keeps its key: a key "<prefix>.<secret>"
verifies unchanged, through the API, the middleware and "apikey verify".

SOURCE is the Django database or a dump of it:
  a file path or sqlite:PATH   a Django SQLite database (opened read-only)
  postgres://... or postgresql://...
                               a Django PostgreSQL database
  a .json file                 the output of "manage.py dumpdata" (the
                               models of the table, others ignored)

Each row of the table (--table, default rest_framework_api_key_apikey; for
dumpdata, the model whose label is the table name with a dot for the
first underscore that makes it match, e.g. rest_framework_api_key.apikey)
becomes a key:
  id            drf<n><prefix>, padded with zeros to 12 (drf8AbCd1234 for
                the prefix AbCd1234): the key's id in apikey
  prefix        "drf." (the key keeps the DRF form; native keys refuse it)
  name          name (control characters become spaces)
  created_at    created (naive times are taken as UTC, as Django stores
                them with USE_TZ = True)
  expires_at    expiry_date; expired keys are imported expired
  revoked_at    the time of the import, for a revoked row: the key is
                revoked in the same transaction, never usable
  owner         the column --owner-column names, if any
  metadata      every other column of a custom model (id and hashed_key
                excepted), by column name; --ignore-column leaves one out
  scopes        the --scope flags, for every key (DRF API Key has none)
The digest is kept: sha512$$ as it is; a Django password hash (pbkdf2_sha256,
pbkdf2_sha1, argon2, bcrypt_sha256, bcrypt, scrypt), from DRF API Key
before 2.0, until the key's first successful use replaces it.

Every key imported leaves a key.imported entry in the audit log, and a
revoked one a key.revoked entry. The import is idempotent: a key whose id
is taken (imported before, even if deleted since) is skipped, never
changed. Rows that cannot be imported are listed with the reason, and the
exit status is then 1. --dry-run reads everything and prints, one line a
row, what would happen, without writing.

Rows are imported in transactions of --batch rows. A progress bar is drawn
on standard error when it is a terminal, else a line a second.

--json prints the totals alone (no line per row, even with --dry-run) as
one JSON object:
  {"dry_run", "rows", "imported", "skipped", "revoked", "expired",
   "legacy_hash", "refused": [{"row", "error"}]}
"imported" and "skipped" count what would happen in a dry run; "revoked",
"expired" and "legacy_hash" count among the keys imported. The exit status
is 1 when rows were refused, as without --json.`,
		Example: `  apikey import drf ./db.sqlite3 --db postgres://apikey@db/apikey --dry-run
  apikey import drf postgres://django@db/shop --table orgs_organizationapikey --owner-column organization_id
  python manage.py dumpdata rest_framework_api_key > keys.json && apikey import drf keys.json`,
		Args: oneArg("the Django database (a SQLite file, a postgres:// URL) or a dumpdata JSON file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.batch < 1 || o.batch > 100_000 {
				return usagef("invalid --batch %d: must be from 1 to 100000", o.batch)
			}
			if !validTableName(o.table) {
				return usagef("invalid --table %q: want a table name (letters, digits, _), optionally schema.table", o.table)
			}
			for _, s := range o.scopes {
				if !apikey.ValidScope(s) {
					return usagef("invalid --scope %q", s)
				}
			}
			return a.importDRF(cmd.Context(), args[0], o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.table, "table", "rest_framework_api_key_apikey", "the table of the API key model (a custom model derived from AbstractAPIKey has its own)")
	f.StringVar(&o.ownerColumn, "owner-column", "", "the column whose value becomes the key's owner (e.g. organization_id)")
	f.StringArrayVar(&o.ignore, "ignore-column", nil, "a column of a custom model to leave out of the metadata (repeatable)")
	f.StringArrayVar(&o.scopes, "scope", nil, "a scope to give every imported key (repeatable)")
	f.IntVar(&o.batch, "batch", 2000, "rows per transaction")
	f.BoolVar(&o.dryRun, "dry-run", false, "print what would happen, row by row, and write nothing")
	f.BoolVar(&o.asJSON, "json", false, `print the totals as JSON: {"dry_run", "rows", "imported", "skipped", "revoked", "expired", "legacy_hash", "refused": [{"row", "error"}]}`)
	return cmd
}

// drfColumns are the columns of AbstractAPIKey. id holds the prefix and a
// digest and is never imported; the others map to fields of the key.
var drfColumns = map[string]bool{"id": true, "prefix": true, "hashed_key": true, "name": true, "created": true, "revoked": true, "expiry_date": true}

// importer runs one "import drf".
type importer struct {
	m   *apikey.Manager
	imp apikey.Importer
	o   drfOptions
	out io.Writer // the lines of a dry run; io.Discard with --json
	// stdout receives the report.
	stdout io.Writer

	// counts
	rows, imported, skipped, revoked, expired, legacy int
	refused                                           []refusedRow
}

// refusedRow is a row that cannot be imported, and why.
type refusedRow struct {
	Row   string `json:"row"`
	Error string `json:"error"`
}

// drfReport is the JSON form of the totals of "import drf --json".
type drfReport struct {
	DryRun     bool         `json:"dry_run"`
	Rows       int          `json:"rows"`
	Imported   int          `json:"imported"`
	Skipped    int          `json:"skipped"`
	Revoked    int          `json:"revoked"`
	Expired    int          `json:"expired"`
	LegacyHash int          `json:"legacy_hash"`
	Refused    []refusedRow `json:"refused"`
}

func (a *app) importDRF(ctx context.Context, source string, o drfOptions) error {
	src, err := openDRFSource(ctx, source, o.table)
	if err != nil {
		return err
	}
	defer src.close()
	total, err := src.count(ctx)
	if err != nil {
		return err
	}
	m, err := a.manager(ctx)
	if err != nil {
		return err
	}
	imp, ok := a.db.store.(apikey.Importer)
	if !ok {
		return fmt.Errorf("the %s store cannot import keys", a.db.loc.driver)
	}
	in := &importer{m: m, imp: imp, o: o, out: a.stdout, stdout: a.stdout}
	if o.asJSON {
		in.out = io.Discard
	}
	p := newProgress(a.stderr, "import", total)
	if o.dryRun {
		p = nil
	}
	batch := make([]drfRow, 0, o.batch)
	flush := func() error {
		err := in.flush(ctx, batch)
		batch = batch[:0]
		if p != nil {
			p.update(in.rows)
		}
		return err
	}
	err = src.each(ctx, func(r drfRow) error {
		batch = append(batch, r)
		if len(batch) == o.batch {
			return flush()
		}
		return nil
	})
	if err == nil && len(batch) > 0 {
		err = flush()
	}
	if p != nil {
		p.done()
	}
	if err != nil {
		return fmt.Errorf("importing from %s: %w", src.name(), err)
	}
	return in.report()
}

// drfRow is one row of the source: its number (from 1) and its columns.
type drfRow struct {
	n    int
	cols map[string]any
}

// flush imports (or, in a dry run, examines) one batch of rows.
func (in *importer) flush(ctx context.Context, rows []drfRow) error {
	var recs []*apikey.Record
	var labels []string
	for _, r := range rows {
		in.rows++
		label := rowLabel(r)
		rec, err := in.record(r)
		if err != nil {
			in.refuse(label, err)
			continue
		}
		recs = append(recs, rec)
		labels = append(labels, label)
	}
	if len(recs) == 0 {
		return nil
	}
	var done []bool
	var err error
	if in.o.dryRun {
		ids := make([]string, len(recs))
		for i, rec := range recs {
			ids[i] = rec.ID
		}
		taken, terr := in.imp.Taken(ctx, ids)
		if terr != nil {
			return terr
		}
		done = make([]bool, len(recs))
		for i := range taken {
			done[i] = !taken[i]
		}
	} else if done, err = in.m.Import(ctx, recs); err != nil {
		return err
	}
	now := in.m.Now()
	for i, rec := range recs {
		if !done[i] {
			in.skipped++
			if in.o.dryRun {
				fmt.Fprintf(in.out, "skip    %s  %s  already imported\n", rec.ID, labels[i])
			}
			continue
		}
		in.imported++
		var notes []string
		if rec.RevokedAt != nil {
			in.revoked++
			notes = append(notes, "revoked")
		} else if rec.Expired(now) {
			in.expired++
			notes = append(notes, "expired")
		}
		if !strings.HasPrefix(rec.Hash, "sha512$$") {
			in.legacy++
			alg, _, _ := strings.Cut(rec.Hash, "$")
			notes = append(notes, "legacy "+alg)
		}
		if in.o.dryRun {
			line := fmt.Sprintf("import  %s  %s  %q", rec.ID, labels[i], rec.Name)
			if rec.Owner != "" {
				line += fmt.Sprintf(" owner %q", rec.Owner)
			}
			if len(notes) > 0 {
				line += "  (" + strings.Join(notes, ", ") + ")"
			}
			fmt.Fprintln(in.out, line)
		}
	}
	return nil
}

// rowLabel names a row in messages: its DRF prefix (public: DRF API Key
// shows it in its admin list) or its number.
func rowLabel(r drfRow) string {
	if p, ok := r.cols["prefix"].(string); ok && p != "" && len(p) <= 32 && apikey.ValidText(p) {
		return "prefix " + p
	}
	return fmt.Sprintf("row %d", r.n)
}

func (in *importer) refuse(label string, err error) {
	msg := strings.TrimPrefix(err.Error(), "apikey: ")
	in.refused = append(in.refused, refusedRow{Row: label, Error: msg})
	if in.o.dryRun {
		fmt.Fprintf(in.out, "refuse  %s: %s\n", label, msg)
	}
}

// report prints the totals, and the refused rows, and makes the exit
// status 1 when rows were refused.
func (in *importer) report() error {
	if in.o.asJSON {
		rep := drfReport{DryRun: in.o.dryRun, Rows: in.rows, Imported: in.imported, Skipped: in.skipped,
			Revoked: in.revoked, Expired: in.expired, LegacyHash: in.legacy, Refused: in.refused}
		if rep.Refused == nil {
			rep.Refused = []refusedRow{}
		}
		if err := writeJSON(in.stdout, rep); err != nil {
			return err
		}
	} else {
		verb, skip := "imported", "skipped"
		if in.o.dryRun {
			verb, skip = "would import", "would skip"
		}
		fmt.Fprintf(in.out, "%s %d of %d keys (%d revoked, %d expired, %d with a legacy hash); %s %d already imported; refused %d\n",
			verb, in.imported, in.rows, in.revoked, in.expired, in.legacy, skip, in.skipped, len(in.refused))
		if !in.o.dryRun {
			for _, r := range in.refused {
				fmt.Fprintln(in.out, "refused "+r.Row+": "+r.Error)
			}
		}
	}
	if len(in.refused) == 0 {
		return nil
	}
	return refusedf("%d rows were not imported", len(in.refused))
}

// record maps a row to the record of its key.
func (in *importer) record(r drfRow) (*apikey.Record, error) {
	k := apikey.DRFKey{Scopes: in.o.scopes, Metadata: map[string]string{}}
	var err error
	if k.Prefix, err = textColumn(r.cols, "prefix"); err != nil {
		return nil, err
	}
	if k.HashedKey, err = textColumn(r.cols, "hashed_key"); err != nil {
		return nil, err
	}
	if v, ok := r.cols["name"]; ok && v != nil {
		if k.Name, err = textValue(v); err != nil {
			return nil, fmt.Errorf("name: %w", err)
		}
	}
	created, ok := r.cols["created"]
	if !ok || created == nil {
		return nil, errors.New("no created time")
	}
	if k.Created, err = timeValue(created); err != nil {
		return nil, fmt.Errorf("created: %w", err)
	}
	if v := r.cols["expiry_date"]; v != nil {
		t, err := timeValue(v)
		if err != nil {
			return nil, fmt.Errorf("expiry_date: %w", err)
		}
		k.ExpiryDate = &t
	}
	if v := r.cols["revoked"]; v != nil {
		if k.Revoked, err = boolValue(v); err != nil {
			return nil, fmt.Errorf("revoked: %w", err)
		}
	}
	owner := ownerColumn(r.cols, in.o.ownerColumn)
	if owner != "" {
		if v := r.cols[owner]; v != nil {
			if k.Owner, err = textValue(v); err != nil {
				return nil, fmt.Errorf("owner (%s): %w", owner, err)
			}
		}
	}
	for name, v := range r.cols {
		if drfColumns[name] || name == owner || v == nil || ignored(in.o.ignore, name) {
			continue
		}
		s, err := textValue(v)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", name, err)
		}
		k.Metadata[name] = s
	}
	return in.m.NewDRFRecord(k)
}

// ownerColumn returns the column of cols that --owner-column names: the
// name itself, or, as dumpdata names foreign keys after the field
// ("organization") and SQL after the column ("organization_id"), the
// other spelling. It returns "" when none is set.
func ownerColumn(cols map[string]any, name string) string {
	if name == "" {
		return ""
	}
	if _, ok := cols[name]; ok {
		return name
	}
	if base, ok := strings.CutSuffix(name, "_id"); ok {
		if _, ok := cols[base]; ok {
			return base
		}
	}
	if _, ok := cols[name+"_id"]; ok {
		return name + "_id"
	}
	return name
}

func ignored(list []string, name string) bool {
	for _, c := range list {
		if c == name || c == name+"_id" || strings.TrimSuffix(c, "_id") == name {
			return true
		}
	}
	return false
}

func textColumn(cols map[string]any, name string) (string, error) {
	v, ok := cols[name]
	if !ok || v == nil {
		return "", fmt.Errorf("no %s", name)
	}
	s, err := textValue(v)
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return s, nil
}

// sortedColumns returns the names of cols in order, for messages.
func sortedColumns(cols []string) string {
	c := append([]string(nil), cols...)
	sort.Strings(c)
	return strings.Join(c, ", ")
}

// validTableName reports whether s is a table name, optionally qualified
// by a schema: letters, digits and _, not starting with a digit.
func validTableName(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) > 2 {
		return false
	}
	for _, p := range parts {
		if p == "" || len(p) > 63 || (p[0] >= '0' && p[0] <= '9') {
			return false
		}
		for i := 0; i < len(p); i++ {
			c := p[i]
			if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
				return false
			}
		}
	}
	return true
}

// timeLayouts are the forms in which Django's databases and dumpdata
// write times. A time without a zone is taken as UTC.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02",
}

func timeValue(v any) (time.Time, error) {
	switch x := v.(type) {
	case time.Time:
		return x.UTC(), nil
	case string:
		for _, layout := range timeLayouts {
			if t, err := time.Parse(layout, x); err == nil {
				return t.UTC(), nil
			}
		}
		return time.Time{}, fmt.Errorf("%q is not a time", truncate(x, 40))
	case []byte:
		return timeValue(string(x))
	}
	return time.Time{}, fmt.Errorf("a %T is not a time", v)
}

func boolValue(v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case int64:
		return x != 0, nil
	case int32:
		return x != 0, nil
	case float64:
		return x != 0, nil
	case string:
		switch strings.ToLower(x) {
		case "1", "t", "true":
			return true, nil
		case "0", "f", "false":
			return false, nil
		}
	}
	return false, fmt.Errorf("%v is not a boolean", v)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
