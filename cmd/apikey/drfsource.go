package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, for Django's SQLite files
)

// drfSource reads the rows of a DRF API Key table.
type drfSource interface {
	// name says where the rows come from, without a password.
	name() string
	// count returns the number of rows each will visit.
	count(ctx context.Context) (int, error)
	// each calls fn with every row, in the table's order of creation.
	each(ctx context.Context, fn func(drfRow) error) error
	close()
}

// openDRFSource opens SOURCE of "import drf": a postgres:// URL, a
// dumpdata JSON file or a SQLite file (told apart by their first bytes).
func openDRFSource(ctx context.Context, source, table string) (drfSource, error) {
	if strings.HasPrefix(source, "postgres://") || strings.HasPrefix(source, "postgresql://") {
		cfg, err := pgx.ParseConfig(source)
		if err != nil {
			return nil, usagef("invalid SOURCE URL: %v", err)
		}
		octx, cancel := context.WithTimeout(ctx, openTimeout)
		defer cancel()
		conn, err := pgx.ConnectConfig(octx, cfg)
		if err != nil {
			return nil, fmt.Errorf("cannot reach the Django database: %w", err)
		}
		where := fmt.Sprintf("PostgreSQL %s/%s", cfg.Host, cfg.Database)
		return &pgSource{conn: conn, table: table, where: where}, nil
	}
	path := strings.TrimPrefix(source, "sqlite:")
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open SOURCE: %w", err)
	}
	head := make([]byte, 16)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	switch {
	case bytes.Equal(head, []byte("SQLite format 3\x00")):
		f.Close()
		if strings.ContainsAny(path, "?#") {
			return nil, usagef("the SQLite path %q must not contain ? or #", path)
		}
		db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
		if err != nil {
			return nil, fmt.Errorf("cannot open %s: %w", path, err)
		}
		return &sqliteSource{db: db, table: table, path: path}, nil
	case len(bytes.TrimLeft(head, " \t\r\n")) > 0 && bytes.TrimLeft(head, " \t\r\n")[0] == '[':
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			f.Close()
			return nil, err
		}
		defer f.Close()
		return readDumpdata(f, path, table)
	}
	f.Close()
	return nil, usagef("SOURCE %s is neither a SQLite database nor a dumpdata JSON file (a JSON array)", path)
}

// quoteTable quotes a table name, optionally schema-qualified, that
// validTableName accepted.
func quoteTable(table string) string {
	parts := strings.Split(table, ".")
	for i, p := range parts {
		parts[i] = `"` + p + `"`
	}
	return strings.Join(parts, ".")
}

// sqliteSource reads a Django SQLite file, read-only.
type sqliteSource struct {
	db    *sql.DB
	table string
	path  string
}

func (s *sqliteSource) name() string { return s.path }
func (s *sqliteSource) close()       { s.db.Close() }

func (s *sqliteSource) count(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM "+quoteTable(s.table)).Scan(&n); err != nil {
		return 0, fmt.Errorf("cannot read the table %s of %s: %w", s.table, s.path, err)
	}
	return n, nil
}

func (s *sqliteSource) each(ctx context.Context, fn func(drfRow) error) error {
	rows, err := s.db.QueryContext(ctx, "SELECT * FROM "+quoteTable(s.table)+" ORDER BY created, prefix")
	if err != nil {
		return err
	}
	defer rows.Close()
	names, err := rows.Columns()
	if err != nil {
		return err
	}
	vals := make([]any, len(names))
	ptrs := make([]any, len(names))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for n := 1; rows.Next(); n++ {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		cols := make(map[string]any, len(names))
		for i, name := range names {
			cols[name] = vals[i]
		}
		if err := fn(drfRow{n: n, cols: cols}); err != nil {
			return err
		}
	}
	return rows.Err()
}

// pgSource reads a Django PostgreSQL database, in one read-only
// transaction, so that count and rows agree.
type pgSource struct {
	conn  *pgx.Conn
	table string
	where string
	tx    pgx.Tx
}

func (s *pgSource) name() string { return s.where }

func (s *pgSource) close() {
	if s.tx != nil {
		_ = s.tx.Rollback(context.Background())
	}
	_ = s.conn.Close(context.Background())
}

func (s *pgSource) count(ctx context.Context) (int, error) {
	tx, err := s.conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return 0, err
	}
	s.tx = tx
	var n int
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+quoteTable(s.table)).Scan(&n); err != nil {
		return 0, fmt.Errorf("cannot read the table %s of %s: %w", s.table, s.where, err)
	}
	return n, nil
}

func (s *pgSource) each(ctx context.Context, fn func(drfRow) error) error {
	rows, err := s.tx.Query(ctx, "SELECT * FROM "+quoteTable(s.table)+" ORDER BY created, prefix")
	if err != nil {
		return err
	}
	defer rows.Close()
	fields := rows.FieldDescriptions()
	for n := 1; rows.Next(); n++ {
		vals, err := rows.Values()
		if err != nil {
			return err
		}
		cols := make(map[string]any, len(fields))
		for i, f := range fields {
			cols[f.Name] = vals[i]
		}
		if err := fn(drfRow{n: n, cols: cols}); err != nil {
			return err
		}
	}
	return rows.Err()
}

// dumpSource holds the objects of a dumpdata file for one model.
type dumpSource struct {
	path string
	rows []drfRow
}

// readDumpdata reads the objects of the model whose table is table from
// the output of "manage.py dumpdata": a JSON array of
// {"model": "app.model", "pk": ..., "fields": {...}}. The model matches
// when its label with the dot replaced by an underscore is the table name
// (Django's default db_table), or is the table name itself.
func readDumpdata(r io.Reader, path, table string) (drfSource, error) {
	dec := json.NewDecoder(bufio.NewReader(r))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("%s: not a dumpdata file: %w", path, err)
	}
	src := &dumpSource{path: path}
	models := map[string]int{}
	for dec.More() {
		var obj struct {
			Model  string          `json:"model"`
			Fields map[string]any  `json:"fields"`
			PK     json.RawMessage `json:"pk"`
		}
		if err := dec.Decode(&obj); err != nil {
			return nil, fmt.Errorf("%s: not a dumpdata file: %w", path, err)
		}
		models[obj.Model]++
		if obj.Model != table && strings.Replace(obj.Model, ".", "_", 1) != table {
			continue
		}
		src.rows = append(src.rows, drfRow{n: len(src.rows) + 1, cols: obj.Fields})
	}
	if len(src.rows) == 0 {
		var seen []string
		for m := range models {
			seen = append(seen, m)
		}
		return nil, refusedf("%s holds no object of the model of table %s (models found: %s)", path, table, sortedColumns(seen))
	}
	return src, nil
}

func (s *dumpSource) name() string                       { return s.path }
func (s *dumpSource) close()                             {}
func (s *dumpSource) count(context.Context) (int, error) { return len(s.rows), nil }

func (s *dumpSource) each(ctx context.Context, fn func(drfRow) error) error {
	for _, r := range s.rows {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// textValue renders a column's value as text, for the name, the owner or
// metadata.
func textValue(v any) (string, error) {
	switch x := v.(type) {
	case string:
		if !utf8.ValidString(x) {
			return "", errors.New("not valid UTF-8")
		}
		return x, nil
	case []byte:
		return textValue(string(x))
	case bool:
		return strconv.FormatBool(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case int32:
		return strconv.FormatInt(int64(x), 10), nil
	case int16:
		return strconv.FormatInt(int64(x), 10), nil
	case int:
		return strconv.Itoa(x), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32), nil
	case json.Number:
		return x.String(), nil
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano), nil
	case [16]byte: // a PostgreSQL uuid
		h := hex.EncodeToString(x[:])
		return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
	case driver.Valuer:
		dv, err := x.Value()
		if err != nil {
			return "", err
		}
		if dv == nil {
			return "", nil
		}
		return textValue(dv)
	case map[string]any, []any:
		b, err := json.Marshal(x)
		return string(b), err
	}
	return fmt.Sprint(v), nil
}
