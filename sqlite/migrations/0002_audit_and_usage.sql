-- apikey_events is the audit log: one row per mutation of a key, written in
-- the same transaction as the change. It has no foreign key to apikey_keys on
-- purpose: a deleted key keeps its history. id is the sequence number that
-- orders the log (AUTOINCREMENT: never reused, even after the highest row
-- goes, which the triggers below forbid anyway).
--
-- changes is the JSON object of apikey.MarshalChanges: field name to
-- {"before": ..., "after": ...}.
CREATE TABLE apikey_events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    type    TEXT NOT NULL CHECK (type <> ''),
    at      TEXT NOT NULL
        CHECK (at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'),
    actor   TEXT NOT NULL DEFAULT '',
    key_id  TEXT NOT NULL CHECK (key_id <> ''),
    owner   TEXT NOT NULL DEFAULT '',
    changes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(changes) AND json_type(changes) = 'object')
) STRICT;

-- The history of one key, and what one actor did, newest first.
CREATE INDEX apikey_events_key ON apikey_events (key_id, id);
CREATE INDEX apikey_events_actor ON apikey_events (actor, id);

-- The audit log is append-only, whatever code writes to the database: no
-- entry may be changed or removed, nor replaced by INSERT OR REPLACE (whose
-- implicit delete fires no delete trigger).
CREATE TRIGGER apikey_events_no_update
BEFORE UPDATE ON apikey_events
BEGIN
    SELECT RAISE(ABORT, 'apikey: the audit log is append-only');
END;

CREATE TRIGGER apikey_events_no_delete
BEFORE DELETE ON apikey_events
BEGIN
    SELECT RAISE(ABORT, 'apikey: the audit log is append-only');
END;

CREATE TRIGGER apikey_events_no_replace
BEFORE INSERT ON apikey_events
WHEN EXISTS (SELECT 1 FROM apikey_events WHERE id = NEW.id)
BEGIN
    SELECT RAISE(ABORT, 'apikey: the audit log is append-only');
END;

-- apikey_usage counts verifications per key, minute (bucket, the start of
-- the minute in the time format of apikey_keys) and outcome ("valid",
-- "invalid_key", "key_expired", "key_revoked"). No foreign key either: the
-- store only adds counts for keys that exist when it writes them, and usage
-- outlives a deleted key like its audit history.
CREATE TABLE apikey_usage (
    key_id  TEXT NOT NULL,
    bucket  TEXT NOT NULL
        CHECK (bucket GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'),
    outcome TEXT NOT NULL CHECK (outcome <> ''),
    count   INTEGER NOT NULL CHECK (count >= 0),
    PRIMARY KEY (key_id, bucket, outcome)
) STRICT, WITHOUT ROWID;
