package sqlite

import (
	"context"
	"database/sql"
)

// The writes of a Store run one at a time, in the order they come, under
// a lock of the process (lockWrites), and only then ask SQLite for its
// write lock: every write transaction (inTx, beginWrite, the batches of
// credit spends) and every write statement outside one (execWrite). With
// Open they run on writeDB, a connection that only the holder of the turn
// uses, so that a write never waits for the readers' pool while others
// wait for it, and a write waiting for its turn holds no connection.
//
// SQLite's own lock is not enough. A connection that finds the write
// lock taken waits in SQLite's busy handler, which polls: it sleeps 1, 2,
// 5, ... then 100 ms between tries, and fails with SQLITE_BUSY
// ("database is locked") once BusyTimeout has passed. It is not a queue:
// a connection that has just committed is handed at once to the next
// writer of the pool (or, for the spends, to the next batch), which takes
// the lock again before a sleeping connection wakes up. Under steady
// writes (16 clients creating keys while credits are spent, usage
// flushed and webhooks claimed) a connection could lose every try for
// five seconds, and a Create failed with "database is locked"
// (TestConcurrentWritersNeverLocked); meanwhile the writers sleeping in
// the busy handler held the pool's connections, and reads waited. With the writes of the process
// queued here, SQLite's lock is free whenever one of them asks for it,
// unless another process holds it: the busy timeout is then left to
// bound the waits for other processes (the command line, another
// instance) alone.

// lockWrites waits until no other write of the Store runs, or until ctx
// ends, and returns the function that ends the write. Waiting writers go
// in the order they came (a channel's senders are queued), so none of
// them can starve.
func (s *Store) lockWrites(ctx context.Context) (unlock func(), err error) {
	select {
	case s.writes <- struct{}{}:
		return func() { <-s.writes }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// beginWrite begins a write transaction under the write lock (BEGIN
// IMMEDIATE on Open's connections). end rolls the transaction back unless
// it was committed, and releases the lock: defer it.
func (s *Store) beginWrite(ctx context.Context) (tx *sql.Tx, end func(), err error) {
	unlock, err := s.lockWrites(ctx)
	if err != nil {
		return nil, nil, err
	}
	tx, err = s.writeDB.BeginTx(ctx, nil)
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return tx, func() { tx.Rollback(); unlock() }, nil
}

// inTx runs fn in a write transaction (beginWrite) and commits it unless
// fn fails.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, end, err := s.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer end()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// execWrite runs one write statement outside a transaction under the
// write lock.
func (s *Store) execWrite(ctx context.Context, query string, args ...any) (sql.Result, error) {
	unlock, err := s.lockWrites(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return s.writeDB.ExecContext(ctx, query, args...)
}
