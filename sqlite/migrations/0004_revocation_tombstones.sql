-- Revocation outlives the row. The triggers of 0001 stop an UPDATE from
-- clearing revoked_at and an insert over a revoked row, but not a DELETE of
-- the revoked row followed by an INSERT of the same id, unrevoked, with the
-- same hash: that brought the revoked token back.
--
-- apikey_revoked_ids keeps, for good, the id of every key that was ever
-- revoked (a tombstone), and no key may be inserted with such an id. A
-- tombstone is written as soon as a key is revoked (or inserted revoked),
-- not only when it is deleted: SQLite deletes the rows that REPLACE
-- conflicts remove without firing delete triggers (unless
-- recursive_triggers is on), so the revoked row may disappear in ways no
-- trigger sees. Deleting a revoked key (Store.Delete) stays allowed; its
-- tombstone stays behind.
CREATE TABLE apikey_revoked_ids (
    id TEXT NOT NULL PRIMARY KEY
) STRICT, WITHOUT ROWID;

-- Every key already revoked.
INSERT INTO apikey_revoked_ids (id)
SELECT id FROM apikey_keys WHERE revoked_at IS NOT NULL;

-- The tombstones are append-only. (Replacing one with INSERT OR REPLACE
-- writes the same id back: nothing to guard.) The inserts in the triggers
-- below test NOT EXISTS rather than rely on OR IGNORE, which a conflict
-- clause on the statement that fired them would override.
CREATE TRIGGER apikey_revoked_ids_no_update
BEFORE UPDATE ON apikey_revoked_ids
BEGIN
    SELECT RAISE(ABORT, 'apikey: revoked key ids are kept for good');
END;

CREATE TRIGGER apikey_revoked_ids_no_delete
BEFORE DELETE ON apikey_revoked_ids
BEGIN
    SELECT RAISE(ABORT, 'apikey: revoked key ids are kept for good');
END;

CREATE TRIGGER apikey_keys_tombstone_on_revoke
AFTER UPDATE OF revoked_at ON apikey_keys
FOR EACH ROW
WHEN NEW.revoked_at IS NOT NULL
BEGIN
    INSERT INTO apikey_revoked_ids (id)
    SELECT NEW.id WHERE NOT EXISTS (SELECT 1 FROM apikey_revoked_ids WHERE id = NEW.id);
END;

CREATE TRIGGER apikey_keys_tombstone_on_insert
AFTER INSERT ON apikey_keys
FOR EACH ROW
WHEN NEW.revoked_at IS NOT NULL
BEGIN
    INSERT INTO apikey_revoked_ids (id)
    SELECT NEW.id WHERE NOT EXISTS (SELECT 1 FROM apikey_revoked_ids WHERE id = NEW.id);
END;

CREATE TRIGGER apikey_keys_tombstone_on_delete
AFTER DELETE ON apikey_keys
FOR EACH ROW
WHEN OLD.revoked_at IS NOT NULL
BEGIN
    INSERT INTO apikey_revoked_ids (id)
    SELECT OLD.id WHERE NOT EXISTS (SELECT 1 FROM apikey_revoked_ids WHERE id = OLD.id);
END;

-- A revoked id can never be used again, whatever the statement.
CREATE TRIGGER apikey_keys_revoked_id_not_reused
BEFORE INSERT ON apikey_keys
FOR EACH ROW
WHEN EXISTS (SELECT 1 FROM apikey_revoked_ids WHERE id = NEW.id)
BEGIN
    SELECT RAISE(ABORT, 'apikey: revoked key ids cannot be reused');
END;

-- A key's id never changes. Without this, UPDATE OR REPLACE could move
-- another row onto a revoked id, deleting the revoked row as a conflict
-- (no delete trigger fires) and leaving an unrevoked key under its id.
CREATE TRIGGER apikey_keys_id_immutable
BEFORE UPDATE OF id ON apikey_keys
FOR EACH ROW
WHEN NEW.id IS NOT OLD.id
BEGIN
    SELECT RAISE(ABORT, 'apikey: a key id cannot be changed');
END;
