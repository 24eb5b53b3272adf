-- apikey_events is the audit log: one row per mutation of a key, written in
-- the same transaction as the change. It has no foreign key to apikey_keys on
-- purpose: a deleted key keeps its history. id is the sequence number that
-- orders the log; changes is the JSON object of apikey.MarshalChanges (field
-- name to {"before": ..., "after": ...}).
CREATE TABLE apikey_events (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type    text NOT NULL CHECK (type <> ''),
    at      timestamptz NOT NULL,
    actor   text NOT NULL DEFAULT '',
    key_id  text COLLATE "C" NOT NULL CHECK (key_id <> ''),
    owner   text NOT NULL DEFAULT '',
    changes jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(changes) = 'object')
);

-- The history of one key, and what one actor did, newest first.
CREATE INDEX apikey_events_key ON apikey_events (key_id, id);
CREATE INDEX apikey_events_actor ON apikey_events (actor, id);

-- The audit log is append-only, whatever client writes to the database: no
-- entry may be changed, deleted or truncated.
CREATE FUNCTION apikey_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'apikey: the audit log is append-only'
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;

CREATE TRIGGER apikey_events_append_only
BEFORE UPDATE OR DELETE ON apikey_events
FOR EACH ROW EXECUTE FUNCTION apikey_events_append_only();

CREATE TRIGGER apikey_events_no_truncate
BEFORE TRUNCATE ON apikey_events
FOR EACH STATEMENT EXECUTE FUNCTION apikey_events_append_only();

-- apikey_usage counts verifications per key, minute (bucket) and outcome
-- ("valid", "invalid_key", "key_expired", "key_revoked"). No foreign key
-- either: the store adds counts only for keys that exist when it writes
-- them, and usage outlives a deleted key like its audit history.
CREATE TABLE apikey_usage (
    key_id  text COLLATE "C" NOT NULL,
    bucket  timestamptz NOT NULL,
    outcome text COLLATE "C" NOT NULL CHECK (outcome <> ''),
    count   bigint NOT NULL CHECK (count >= 0),
    PRIMARY KEY (key_id, bucket, outcome)
);

-- Cross-instance cache invalidation: every committed change to a key that a
-- verification cache may hold sends the key's id on the channel apikey_keys
-- (see Store.Listen). Being a trigger, it also covers changes made with
-- plain SQL. Writes of last_used_at alone, which usage flushes make all the
-- time, notify nobody. NOTIFY is delivered at commit, and not at all on
-- rollback.
CREATE FUNCTION apikey_keys_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_LEVEL = 'STATEMENT' THEN
        -- TRUNCATE: an empty payload means "every key".
        PERFORM pg_notify('apikey_keys', '');
    ELSE
        PERFORM pg_notify('apikey_keys', OLD.id);
        IF TG_OP = 'UPDATE' AND NEW.id IS DISTINCT FROM OLD.id THEN
            PERFORM pg_notify('apikey_keys', NEW.id);
        END IF;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER apikey_keys_notify
AFTER UPDATE OF id, prefix, name, owner, scopes, metadata, hash, created_at, expires_at, revoked_at OR DELETE
ON apikey_keys
FOR EACH ROW EXECUTE FUNCTION apikey_keys_notify();

CREATE TRIGGER apikey_keys_notify_truncate
AFTER TRUNCATE ON apikey_keys
FOR EACH STATEMENT EXECUTE FUNCTION apikey_keys_notify();
