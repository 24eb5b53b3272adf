package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/go-apikey/apikey"
)

var _ apikey.LimitStore = (*Store)(nil)

// encodeLimits returns the stored JSON of rate limits: [] when none.
func encodeLimits(l []apikey.RateLimit) (string, error) {
	if len(l) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(l)
	return string(b), err
}

// decodeLimits decodes the stored JSON of rate limits; none is nil.
func decodeLimits(s string) ([]apikey.RateLimit, error) {
	if s == "[]" || s == "" {
		return nil, nil
	}
	var out []apikey.RateLimit
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// encodeCredits returns the three stored columns of a balance; all NULL
// for nil.
func encodeCredits(c *apikey.Credits) (remaining, refill, next any, err error) {
	if c == nil {
		return nil, nil, nil, nil
	}
	remaining = c.Remaining
	if c.Refill != nil {
		b, err := json.Marshal(c.Refill)
		if err != nil {
			return nil, nil, nil, err
		}
		refill = string(b)
	}
	return remaining, refill, formatTimePtr(c.NextRefillAt), nil
}

// storedCredits are the three stored columns of a balance.
type storedCredits struct {
	remaining    sql.NullInt64
	refill, next sql.NullString
}

func (sc storedCredits) decode() (*apikey.Credits, error) {
	if !sc.remaining.Valid {
		return nil, nil
	}
	c := &apikey.Credits{Remaining: sc.remaining.Int64}
	if sc.refill.Valid {
		c.Refill = new(apikey.Refill)
		if err := json.Unmarshal([]byte(sc.refill.String), c.Refill); err != nil {
			return nil, err
		}
	}
	var err error
	c.NextRefillAt, err = parseTimePtr(sc.next)
	return c, err
}

const ownerColumns = "id, ratelimits, credits_remaining, credits_refill, credits_next_refill, updated_at"

func scanOwner(row scanner) (*apikey.Owner, error) {
	var (
		o               apikey.Owner
		limits, updated string
		sc              storedCredits
	)
	if err := row.Scan(&o.ID, &limits, &sc.remaining, &sc.refill, &sc.next, &updated); err != nil {
		return nil, err
	}
	var err, err2, err3 error
	o.RateLimits, err = decodeLimits(limits)
	if o.RateLimits == nil {
		o.RateLimits = []apikey.RateLimit{}
	}
	o.Credits, err2 = sc.decode()
	o.UpdatedAt, err3 = parseTime(updated)
	if err := errors.Join(err, err2, err3); err != nil {
		return nil, fmt.Errorf("owner %q: %w", o.ID, err)
	}
	return &o, nil
}

// Owner implements apikey.LimitStore.
func (s *Store) Owner(ctx context.Context, id string) (*apikey.Owner, error) {
	o, err := scanOwner(s.db.QueryRowContext(ctx, `SELECT `+ownerColumns+` FROM apikey_owners WHERE id = ?`, id))
	if err != nil {
		return nil, storeErr("owner", err)
	}
	return o, nil
}

// PutOwner implements apikey.LimitStore in one write transaction.
func (s *Store) PutOwner(ctx context.Context, id string, u apikey.OwnerUpdate, now time.Time, ev *apikey.Event) (*apikey.Owner, error) {
	var after *apikey.Owner
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		before, err := scanOwner(tx.QueryRowContext(ctx, `SELECT `+ownerColumns+` FROM apikey_owners WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			before, err = nil, nil
		}
		if err != nil {
			return err
		}
		next := &apikey.Owner{ID: id, RateLimits: []apikey.RateLimit{}}
		if before != nil {
			next = before.Clone()
		}
		if u.RateLimits != nil {
			next.RateLimits = *u.RateLimits
		}
		switch {
		case u.ClearCredits:
			next.Credits = nil
		case u.Credits != nil:
			next.Credits = u.Credits
		}
		limits, err := encodeLimits(next.RateLimits)
		if err != nil {
			return err
		}
		remaining, refill, nextRefill, err := encodeCredits(next.Credits)
		if err != nil {
			return err
		}
		after, err = scanOwner(tx.QueryRowContext(ctx, `INSERT INTO apikey_owners (`+ownerColumns+`) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET ratelimits = excluded.ratelimits, credits_remaining = excluded.credits_remaining,
				credits_refill = excluded.credits_refill, credits_next_refill = excluded.credits_next_refill,
				updated_at = excluded.updated_at
			RETURNING `+ownerColumns, id, limits, remaining, refill, nextRefill, formatTime(now)))
		if err != nil {
			return err
		}
		if u.ClearCredits || u.Credits != nil { // a new epoch: see apikey.Balance
			if _, err := tx.ExecContext(ctx, `UPDATE apikey_owners SET credits_epoch = max(credits_epoch + 1, ?) WHERE id = ?`, now.UnixNano(), id); err != nil {
				return err
			}
		}
		return writeEvent(ctx, tx, ev, id, apikey.DiffOwner(before, after))
	})
	if err != nil {
		return nil, storeErr("put owner", err)
	}
	return after, nil
}

// DeleteOwner implements apikey.LimitStore in one write transaction; the
// delete trigger of apikey_owners (migration 0007) records the change.
func (s *Store) DeleteOwner(ctx context.Context, id string, ev *apikey.Event) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		before, err := scanOwner(tx.QueryRowContext(ctx, `DELETE FROM apikey_owners WHERE id = ? RETURNING `+ownerColumns, id))
		if err != nil {
			return err
		}
		return writeEvent(ctx, tx, ev, id, apikey.DiffOwner(before, nil))
	})
	return storeErr("delete owner", err)
}

// balance is a balance read for a spend or an adjustment, with where to
// write it back.
type balance struct {
	table, id string
	apikey.Balance
	dirty bool // changed by a spend, to be written back
}

func readBalance(ctx context.Context, tx querier, table, id string) (*balance, error) {
	var sc storedCredits
	var epoch int64
	err := tx.QueryRowContext(ctx, `SELECT credits_remaining, credits_refill, credits_next_refill, credits_epoch FROM `+table+` WHERE id = ?`, id).
		Scan(&sc.remaining, &sc.refill, &sc.next, &epoch)
	if err != nil {
		return nil, err
	}
	c, err := sc.decode()
	if err != nil {
		return nil, fmt.Errorf("%s %q: malformed credits: %w", table, id, err)
	}
	return &balance{table: table, id: id, Balance: apikey.Balance{Credits: c, Epoch: epoch}}, nil
}

func (b *balance) write(ctx context.Context, tx querier) error {
	remaining, _, next, err := encodeCredits(b.Credits)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE `+b.table+` SET credits_remaining = ?, credits_next_refill = ?, credits_epoch = ? WHERE id = ?`, remaining, next, b.Epoch, b.id)
	return err
}

// SpendCredits implements apikey.LimitStore in a write transaction, which
// Open's connections begin with BEGIN IMMEDIATE: spends are serialised by
// SQLite's write lock, across processes too.
//
// Concurrent spends of one Store share a transaction (group commit): one
// of the callers runs, in one transaction, every spend that is waiting,
// one after another; when one of them fails, each
// runs again in a transaction of its own, so that one spend's error leaves
// the others alone. The answers are those of the spends run
// one by one, and all of them are committed at once, instead of one
// commit per spend, without waiting for a sync of the log (inSpendTx).
func (s *Store) SpendCredits(ctx context.Context, req apikey.SpendRequest) (apikey.SpendResult, error) {
	if err := apikey.CheckSpendRequest(req); err != nil {
		return apikey.SpendResult{}, fmt.Errorf("sqlite: %w", err)
	}
	c := &spendCall{req: req, done: make(chan struct{}), lead: make(chan struct{}, 1)}
	s.spends.mu.Lock()
	s.spends.pending = append(s.spends.pending, c)
	lead := !s.spends.leading
	s.spends.leading = true
	s.spends.mu.Unlock()
	if !lead {
		select {
		case <-c.done:
		case <-c.lead:
			lead = true
		}
	}
	if lead {
		s.leadSpends(ctx)
	}
	if c.err != nil {
		return apikey.SpendResult{}, storeErr("spend credits", c.err)
	}
	return c.res, nil
}

// spendCall is one spend waiting for its batch.
type spendCall struct {
	req  apikey.SpendRequest
	res  apikey.SpendResult
	err  error
	done chan struct{} // closed once res or err is set
	lead chan struct{} // receives when the call is to run the next batch
}

// spendBatcher holds the spends waiting for a transaction.
type spendBatcher struct {
	mu      sync.Mutex
	pending []*spendCall
	leading bool // a caller is running a batch, or has been told to
}

// spendBatchTimeout bounds how long a batch waits for its turn among the
// Store's writes and for a connection of the pool. The batch does not run
// under the leading caller's context, whose cancellation would fail the
// spends of the others, and its statements run under a context that
// cannot be cancelled: modernc.org/sqlite starts a goroutine per statement
// to watch a cancellable one, which was a tenth of a spend's CPU. SQLite's
// busy timeout (BusyTimeout) bounds their waits for the write lock, which
// only another process can hold when the batch's turn comes.
const spendBatchTimeout = BusyTimeout + 5*time.Second

// leadSpends runs, in the caller's goroutine, the batch of every spend
// waiting, the caller's own among them (a leader's call is always
// pending when it starts), then hands the lead to the first spend that
// came meanwhile, if any, and returns: each caller returns once its own
// batch is done, no goroutine is started, and the spends that arrive
// while a batch runs make the next one together. The balances of a batch
// are read once and written once (balances).
func (s *Store) leadSpends(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	// Let the callers just answered run first: they come back with their
	// next spends, which then join this batch. Without it, on two busy
	// cores, a batch held 2 to 4 spends of 32 clients; with it about 20.
	runtime.Gosched()
	s.spends.mu.Lock()
	batch := s.spends.pending
	s.spends.pending = nil
	s.spends.mu.Unlock()
	s.spendBatch(ctx, batch)
	s.spends.mu.Lock()
	if len(s.spends.pending) == 0 {
		s.spends.leading = false
	} else {
		s.spends.pending[0].lead <- struct{}{}
	}
	s.spends.mu.Unlock()
}

// spendBatch runs batch in one transaction and answers every call of it.
// When a spend fails, nothing of the batch is kept and each spend runs
// again in a transaction of its own, so that the error is that spend's
// alone.
func (s *Store) spendBatch(ctx context.Context, batch []*spendCall) {
	err := s.inSpendTx(ctx, func(tx *sql.Tx) error {
		ptx := &preparedTx{s: s, tx: tx}
		bals := balances{}
		if err := bals.readAll(ctx, ptx, batch); err != nil {
			return err
		}
		for _, c := range batch {
			res, err := spendTx(ctx, ptx, c.req, bals)
			if err != nil {
				return err
			}
			c.res = res
		}
		return bals.write(ctx, ptx)
	})
	if err != nil && len(batch) > 1 {
		for _, c := range batch {
			s.spendBatch(ctx, []*spendCall{c})
		}
		return
	}
	for _, c := range batch {
		if err != nil {
			c.res, c.err = apikey.SpendResult{}, err
		}
		close(c.done)
	}
}

// inSpendTx is inTx for a batch of spends, whose commit syncs nothing:
// it runs with synchronous=NORMAL (in WAL mode: the commit is in the log,
// and in the operating system's cache, when it returns; the log is synced
// at the next checkpoint or FULL commit). A spend is then as durable as
// the process: a crash of apikey loses none, but a crash of the operating
// system or a power loss may undo the spends of the last moments, with
// their idempotency records, all or nothing per batch (requests served
// and not charged, never charged twice). See docs/limits.md. The sync was
// most of a batch's time.
//
// A Store from Open has a connection of its own for this (spendDB); one
// from New borrows a connection of the pool, sets it to NORMAL for the
// batch and gives it back with its own setting (one already at NORMAL or
// OFF is left alone).
func (s *Store) inSpendTx(ctx context.Context, fn func(*sql.Tx) error) (err error) {
	defer s.prepareWanted(ctx) // after the batch, which holds the connection
	// The batch is one of the Store's writes (lockWrites): it waits for
	// its turn here, not in SQLite's busy handler.
	lctx, cancel := context.WithTimeout(ctx, spendBatchTimeout)
	unlock, err := s.lockWrites(lctx)
	cancel()
	if err != nil {
		return err
	}
	defer unlock()
	if s.spendDB != nil {
		tx, err := s.spendDB.BeginTx(ctx, nil) // the only user of its one connection
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if err := fn(tx); err != nil {
			return err
		}
		return tx.Commit()
	}
	cctx, cancel := context.WithTimeout(ctx, spendBatchTimeout)
	conn, err := s.db.Conn(cctx)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close()
	var sync int
	if err := conn.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil {
		return err
	}
	if sync > syncNormal {
		if _, err := conn.ExecContext(ctx, `PRAGMA synchronous = NORMAL`); err != nil {
			return err
		}
		defer func() {
			if _, rerr := conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA synchronous = %d`, sync)); rerr != nil {
				// Never hand the pool a connection that syncs less than
				// it should: drop it.
				conn.Raw(func(any) error { return driver.ErrBadConn })
			}
		}()
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// syncNormal is the value of PRAGMA synchronous for NORMAL.
const syncNormal = 1

// spendBalances applies apikey.SpendBalances to bals: the key's balance
// first, then, when its row exists, the owner's.
func spendBalances(bals []*balance, req apikey.SpendRequest) apikey.SpendResult {
	var owner *apikey.Balance
	if len(bals) > 1 {
		owner = &bals[1].Balance
	}
	return apikey.SpendBalances(&bals[0].Balance, owner, req)
}

// querier is what the credit statements need of a transaction: a *sql.Tx,
// or a preparedTx over one.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// preparedTx runs statements in tx, preparing each distinct text once per
// Store and connection (Store.prepared) and binding it to tx once per
// transaction: the spends of a batch repeat the same few statements, and
// parsing them was a third of a spend's CPU. The bound statements close
// with the transaction.
type preparedTx struct {
	s     *Store
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

func (p *preparedTx) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := p.stmts[query]; ok {
		return st, nil
	}
	var st *sql.Stmt
	if parent := p.s.prepared(query); parent != nil {
		st = p.tx.StmtContext(ctx, parent)
	} else {
		var err error
		if st, err = p.tx.PrepareContext(ctx, query); err != nil {
			return nil, err
		}
	}
	if p.stmts == nil {
		p.stmts = make(map[string]*sql.Stmt)
	}
	p.stmts[query] = st
	return st, nil
}

// prepared returns the Store's prepared statement of query, or nil when
// it is not prepared yet or the Store is closed. The spends run on a
// connection that their batch holds (spendDB's only one with Open, one of
// the pool with New, which may have only one): a statement not prepared
// yet is noted, and prepareWanted prepares it once the batch is done
// (database/sql then prepares it once on each connection that runs it).
func (s *Store) prepared(query string) *sql.Stmt {
	s.prepMu.Lock()
	defer s.prepMu.Unlock()
	if st, ok := s.stmts[query]; ok || s.closed {
		return st
	}
	if s.wanted == nil {
		s.wanted = make(map[string]bool)
	}
	s.wanted[query] = true
	return nil
}

// keepStmt records st as the statement of query; s.prepMu is held.
func (s *Store) keepStmt(query string, st *sql.Stmt) {
	if s.stmts == nil {
		s.stmts = make(map[string]*sql.Stmt)
	}
	s.stmts[query] = st
}

// prepareWanted prepares the statements that spends wanted (see
// prepared), on spendDB with Open and on the pool with New, after the
// batch, whose connection is then free.
func (s *Store) prepareWanted(ctx context.Context) {
	db := s.db
	if s.spendDB != nil {
		db = s.spendDB // a statement binds to transactions of its own DB only
	}
	s.prepMu.Lock()
	defer s.prepMu.Unlock()
	for query := range s.wanted {
		if s.closed {
			return
		}
		if st, err := db.PrepareContext(ctx, query); err == nil {
			s.keepStmt(query, st)
		}
		delete(s.wanted, query)
	}
}

// QueryRowContext is sql.Tx.QueryRowContext with a prepared statement.
func (p *preparedTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := p.stmt(ctx, query)
	if err != nil {
		return p.tx.QueryRowContext(ctx, query, args...) // reports the same error through Scan
	}
	return st.QueryRowContext(ctx, args...)
}

// QueryContext is sql.Tx.QueryContext with a prepared statement.
func (p *preparedTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := p.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// ExecContext is sql.Tx.ExecContext with a prepared statement.
func (p *preparedTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := p.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// balances are the balances a batch of spends has read, by table and id,
// with their changes: the spends of a batch on one key read its row once
// and write it once, whatever their number (the batch holds SQLite's
// write lock throughout, so nothing else changes them meanwhile). A nil
// entry is an owner without a row.
type balances map[[2]string]*balance

// read returns the balance of id in table, reading it on first use.
func (bs balances) read(ctx context.Context, tx querier, table, id string) (*balance, error) {
	k := [2]string{table, id}
	if b, ok := bs[k]; ok {
		if b == nil {
			return nil, sql.ErrNoRows
		}
		return b, nil
	}
	b, err := readBalance(ctx, tx, table, id)
	switch {
	case errors.Is(err, sql.ErrNoRows) && table == "apikey_owners":
		bs[k] = nil
		return nil, err
	case err != nil:
		return nil, err
	}
	bs[k] = b
	return b, nil
}

// readAll reads the balances of the keys and owners of batch, in one
// statement per table when the batch spends from more than one row of
// it: a statement costs about as much for one row as for twenty, and a
// batch over many keys spent most of its time running one per key. Rows
// that do not exist are left for read to report.
func (bs balances) readAll(ctx context.Context, tx querier, batch []*spendCall) error {
	ids := map[string][]string{}
	seen := map[[2]string]bool{}
	add := func(table, id string) {
		if k := [2]string{table, id}; !seen[k] {
			seen[k] = true
			ids[table] = append(ids[table], id)
		}
	}
	for _, c := range batch {
		add("apikey_keys", c.req.KeyID)
		if c.req.Owner != "" {
			add("apikey_owners", c.req.Owner)
		}
	}
	for table, list := range ids {
		if len(list) < 2 {
			continue
		}
		if err := bs.readMany(ctx, tx, table, list); err != nil {
			return err
		}
	}
	return nil
}

// readMany reads the balances of ids in table in one statement.
func (bs balances) readMany(ctx context.Context, tx querier, table string, ids []string) error {
	arg, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, credits_remaining, credits_refill, credits_next_refill, credits_epoch FROM `+table+`
		WHERE id IN (SELECT value FROM json_each(?))`, string(arg))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id    string
			sc    storedCredits
			epoch int64
		)
		if err := rows.Scan(&id, &sc.remaining, &sc.refill, &sc.next, &epoch); err != nil {
			return err
		}
		c, err := sc.decode()
		if err != nil {
			return fmt.Errorf("%s %q: malformed credits: %w", table, id, err)
		}
		bs[[2]string{table, id}] = &balance{table: table, id: id, Balance: apikey.Balance{Credits: c, Epoch: epoch}}
	}
	return rows.Err()
}

// write writes back the balances that spends changed, in one statement
// per table when more than one row of it changed.
func (bs balances) write(ctx context.Context, tx querier) error {
	dirty := map[string][]*balance{}
	for _, b := range bs {
		if b != nil && b.dirty {
			dirty[b.table] = append(dirty[b.table], b)
		}
	}
	for table, list := range dirty {
		if len(list) == 1 {
			if err := list[0].write(ctx, tx); err != nil {
				return err
			}
			continue
		}
		rows := make([][4]any, len(list))
		for i, b := range list {
			remaining, _, next, err := encodeCredits(b.Credits)
			if err != nil {
				return err
			}
			rows[i] = [4]any{b.id, remaining, next, b.Epoch}
		}
		arg, err := json.Marshal(rows)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE `+table+` SET credits_remaining = j.value ->> 1, credits_next_refill = j.value ->> 2, credits_epoch = j.value ->> 3
			FROM json_each(?) AS j WHERE `+table+`.id = j.value ->> 0`, string(arg)); err != nil {
			return err
		}
	}
	return nil
}

// spendTx runs one spend in tx, over the balances of its batch.
func spendTx(ctx context.Context, tx querier, req apikey.SpendRequest, bs balances) (apikey.SpendResult, error) {
	var res apikey.SpendResult
	if req.IdempotencyKey != "" {
		var keyAfter, ownerAfter sql.NullInt64
		var created string
		err := tx.QueryRowContext(ctx, `SELECT key_after, owner_after, created_at FROM apikey_credit_spends
			WHERE key_id = ? AND idempotency_key = ?`, req.KeyID, req.IdempotencyKey).Scan(&keyAfter, &ownerAfter, &created)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return res, err
		default:
			at, err := parseTime(created)
			if err != nil {
				return res, err
			}
			if req.Now.Sub(at) < apikey.IdempotencyWindow {
				res = apikey.SpendResult{Spent: true, Replayed: true, KeyRemaining: intPtr(keyAfter), OwnerRemaining: intPtr(ownerAfter)}
				return res, nil
			}
		}
	}
	kb, err := bs.read(ctx, tx, "apikey_keys", req.KeyID)
	if err != nil {
		return res, err
	}
	bals := []*balance{kb}
	if req.Owner != "" {
		ob, err := bs.read(ctx, tx, "apikey_owners", req.Owner)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return res, err
		default:
			bals = append(bals, ob)
		}
	}
	res = spendBalances(bals, req)
	for _, b := range bals {
		if b.Credits != nil {
			b.dirty = true // written once, at the end of the batch
		}
	}
	if res.Spent && req.IdempotencyKey != "" && (res.KeyRemaining != nil || res.OwnerRemaining != nil) {
		// The key's records past the window are forgotten as it
		// records a new one, so that the table stays small.
		if _, err := tx.ExecContext(ctx, `DELETE FROM apikey_credit_spends WHERE key_id = ? AND created_at < ?`,
			req.KeyID, formatTime(req.Now.Add(-apikey.IdempotencyWindow))); err != nil {
			return res, err
		}
		_, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO apikey_credit_spends
			(key_id, idempotency_key, owner, cost, key_after, owner_after, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			req.KeyID, req.IdempotencyKey, req.Owner, req.Cost, ptrArg(res.KeyRemaining), ptrArg(res.OwnerRemaining), formatTime(req.Now))
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// AdjustCredits implements apikey.LimitStore in one write transaction.
func (s *Store) AdjustCredits(ctx context.Context, adj apikey.CreditAdjustment, ev *apikey.Event) (*apikey.Credits, error) {
	var out *apikey.Credits
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = adjustTx(ctx, tx, adj, ev)
		return err
	})
	if err != nil {
		return nil, storeErr("adjust credits", err)
	}
	return out, nil
}

func adjustTx(ctx context.Context, tx *sql.Tx, adj apikey.CreditAdjustment, ev *apikey.Event) (*apikey.Credits, error) {
	var b *balance
	owner := adj.Owner
	if adj.KeyID != "" {
		var revoked bool
		if err := tx.QueryRowContext(ctx, `SELECT revoked_at IS NOT NULL, owner FROM apikey_keys WHERE id = ?`, adj.KeyID).Scan(&revoked, &owner); err != nil {
			return nil, err
		}
		if revoked {
			return nil, apikey.ErrFrozen
		}
		var err error
		if b, err = readBalance(ctx, tx, "apikey_keys", adj.KeyID); err != nil {
			return nil, err
		}
	} else {
		_, err := tx.ExecContext(ctx, `INSERT INTO apikey_owners (id, updated_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING`, owner, formatTime(adj.Now))
		if err != nil {
			return nil, err
		}
		if b, err = readBalance(ctx, tx, "apikey_owners", owner); err != nil {
			return nil, err
		}
	}
	before := b.Credits.Clone()
	switch adj.Op {
	case apikey.CreditRefund:
		var cost int64
		var keyAfter, ownerAfter sql.NullInt64
		var spendOwner string
		var refunded sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT cost, key_after, owner_after, owner, refunded_at FROM apikey_credit_spends
			WHERE key_id = ? AND idempotency_key = ?`, adj.KeyID, adj.IdempotencyKey).Scan(&cost, &keyAfter, &ownerAfter, &spendOwner, &refunded)
		if err != nil {
			return nil, err
		}
		if refunded.Valid {
			return b.Credits, nil // refunded already: nothing changes
		}
		if _, err := tx.ExecContext(ctx, `UPDATE apikey_credit_spends SET refunded_at = ? WHERE key_id = ? AND idempotency_key = ?`,
			formatTime(adj.Now), adj.KeyID, adj.IdempotencyKey); err != nil {
			return nil, err
		}
		if keyAfter.Valid && b.Credits != nil {
			b.ApplyRefill(adj.Now)
			b.Credits.Remaining += cost
			if err := b.write(ctx, tx); err != nil {
				return nil, err
			}
		}
		if ownerAfter.Valid {
			ob, err := readBalance(ctx, tx, "apikey_owners", spendOwner)
			switch {
			case errors.Is(err, sql.ErrNoRows):
			case err != nil:
				return nil, err
			case ob.Credits != nil:
				ob.ApplyRefill(adj.Now)
				ob.Credits.Remaining += cost
				if err := ob.write(ctx, tx); err != nil {
					return nil, err
				}
			}
		}
	case apikey.CreditSet, apikey.CreditAdd:
		b.ApplyRefill(adj.Now)
		c, err := apikey.Adjust(b.Credits, adj.Op, adj.Amount, adj.Now)
		if err != nil {
			return nil, err
		}
		if adj.Op == apikey.CreditSet || b.Credits == nil { // a set, or a new balance
			b.Epoch = apikey.NextEpoch(b.Epoch, adj.Now)
		}
		b.Credits = c
		if err := b.write(ctx, tx); err != nil {
			return nil, err
		}
		if adj.KeyID == "" {
			if _, err := tx.ExecContext(ctx, `UPDATE apikey_owners SET updated_at = ? WHERE id = ?`, formatTime(adj.Now), owner); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("%w: unknown credit operation %q", apikey.ErrInvalidInput, adj.Op)
	}
	if err := writeEvent(ctx, tx, ev, owner, map[string]apikey.Change{"credits": apikey.CreditsChange(before, b.Credits)}); err != nil {
		return nil, err
	}
	return b.Credits, nil
}

func intPtr(v sql.NullInt64) *int64 {
	if !v.Valid {
		return nil
	}
	return &v.Int64
}

func ptrArg(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

// PruneSpends implements apikey.SpendPruner.
func (s *Store) PruneSpends(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.execWrite(ctx, `DELETE FROM apikey_credit_spends WHERE created_at < ?`, formatTime(before))
	if err != nil {
		return 0, storeErr("prune spends", err)
	}
	n, err := res.RowsAffected()
	return n, storeErr("prune spends", err)
}
