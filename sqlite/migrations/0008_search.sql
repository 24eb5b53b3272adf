-- Search that scales (KeyFilter.Search: a substring of the name, id or
-- owner, ignoring case): an FTS5 index of the trigrams of the three
-- columns, kept in step with apikey_keys by triggers. List asks it for the
-- candidate ids and keeps its exact test on the rows, so the index only
-- narrows the scan. The index rows are numbered by apikey_keys_search_rows,
-- whose INTEGER PRIMARY KEY is stable (the rowid of apikey_keys is not:
-- VACUUM may renumber it). The index stores no copy of the text
-- (contentless, with deletes).
CREATE TABLE apikey_keys_search_rows (
    n  INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE
) STRICT;

CREATE VIRTUAL TABLE apikey_keys_search USING fts5(
    name, id, owner,
    content = '', contentless_delete = 1,
    tokenize = 'trigram case_sensitive 0'
);

INSERT INTO apikey_keys_search_rows (id) SELECT id FROM apikey_keys ORDER BY created_at, id;
INSERT INTO apikey_keys_search (rowid, name, id, owner)
    SELECT r.n, k.name, k.id, k.owner FROM apikey_keys k JOIN apikey_keys_search_rows r ON r.id = k.id;

CREATE TRIGGER apikey_keys_search_on_insert
AFTER INSERT ON apikey_keys
FOR EACH ROW
BEGIN
    INSERT INTO apikey_keys_search_rows (id) VALUES (NEW.id);
    INSERT INTO apikey_keys_search (rowid, name, id, owner)
        VALUES ((SELECT n FROM apikey_keys_search_rows WHERE id = NEW.id), NEW.name, NEW.id, NEW.owner);
END;

CREATE TRIGGER apikey_keys_search_on_update
AFTER UPDATE OF id, name, owner ON apikey_keys
FOR EACH ROW
BEGIN
    DELETE FROM apikey_keys_search WHERE rowid = (SELECT n FROM apikey_keys_search_rows WHERE id = OLD.id);
    UPDATE apikey_keys_search_rows SET id = NEW.id WHERE id = OLD.id;
    INSERT INTO apikey_keys_search (rowid, name, id, owner)
        VALUES ((SELECT n FROM apikey_keys_search_rows WHERE id = NEW.id), NEW.name, NEW.id, NEW.owner);
END;

CREATE TRIGGER apikey_keys_search_on_delete
AFTER DELETE ON apikey_keys
FOR EACH ROW
BEGIN
    DELETE FROM apikey_keys_search WHERE rowid = (SELECT n FROM apikey_keys_search_rows WHERE id = OLD.id);
    DELETE FROM apikey_keys_search_rows WHERE id = OLD.id;
END;

-- The state filters, in list order: revoked keys, and keys with an expiry
-- (the expired ones among them), are usually few; scanning every key for
-- them newest first would read the whole table.
CREATE INDEX apikey_keys_revoked_created ON apikey_keys (created_at DESC, id DESC) WHERE revoked_at IS NOT NULL;
CREATE INDEX apikey_keys_expiring_created ON apikey_keys (created_at DESC, id DESC) WHERE revoked_at IS NULL AND expires_at IS NOT NULL;

-- An owner's keys in list order (the owner filter, with or without a
-- state), without sorting all of them.
CREATE INDEX apikey_keys_owner_created ON apikey_keys (owner, created_at DESC, id DESC);
