-- The change feed (apikey.ChangeFeed): every insert, update (other than of
-- last_used_at alone, which usage flushes make all the time) and delete of
-- a key appends the key's id and the kind of change to apikey_changes,
-- from triggers, so that
-- every writer is recorded: this package, the command line, plain SQL.
-- SQLite has one writer at a time, so sequence numbers follow commit
-- order; AUTOINCREMENT never reuses one, even after pruning. Managers that
-- cache keys read the feed to evict what changed, and record in
-- apikey_instances how far they have applied it.
CREATE TABLE apikey_changes (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    op     TEXT NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
    key_id TEXT NOT NULL,
    at     TEXT NOT NULL
) STRICT;

-- Pruning by age.
CREATE INDEX apikey_changes_at ON apikey_changes (at);

-- strftime's %f has milliseconds: three zeros give the fixed-width
-- microsecond layout of every other time column.
CREATE TRIGGER apikey_keys_change_on_insert
AFTER INSERT ON apikey_keys
FOR EACH ROW
BEGIN
    INSERT INTO apikey_changes (op, key_id, at) VALUES ('insert', NEW.id, strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'));
END;

CREATE TRIGGER apikey_keys_change_on_update
AFTER UPDATE OF id, prefix, name, owner, scopes, metadata, hash, created_at, expires_at, revoked_at ON apikey_keys
FOR EACH ROW
BEGIN
    INSERT INTO apikey_changes (op, key_id, at) VALUES ('update', NEW.id, strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'));
END;

CREATE TRIGGER apikey_keys_change_on_delete
AFTER DELETE ON apikey_keys
FOR EACH ROW
BEGIN
    INSERT INTO apikey_changes (op, key_id, at) VALUES ('delete', OLD.id, strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'));
END;

-- The Managers that cache keys (apikey.InstanceRegistry): each writes its
-- heartbeat with the highest change it has applied, and counts as live
-- until live_until. Strict revocations wait for every live one.
CREATE TABLE apikey_instances (
    id           TEXT NOT NULL PRIMARY KEY,
    name         TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL,
    live_until   TEXT NOT NULL,
    acked_seq    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
