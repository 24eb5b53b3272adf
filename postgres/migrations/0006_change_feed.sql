-- The change feed (apikey.ChangeFeed): every insert, update (other than of
-- last_used_at alone, which usage flushes make all the time), delete and
-- truncate of keys appends to apikey_changes, from triggers, so that every
-- writer is recorded: this package, the command line, plain SQL, COPY.
-- op is insert, update, delete or truncate; key_id is the changed key's id,
-- or '' for a TRUNCATE (every key).
--
-- Readers go through the feed in sequence order and must never find, later,
-- a change numbered below one they have read. An identity column alone
-- does not promise that: transactions take numbers in one order and commit
-- in another. So the trigger takes a transaction-level advisory lock (one
-- per schema) before it takes a number: writers of key changes take their
-- numbers one transaction at a time, in commit order. Readers take no lock.
CREATE TABLE apikey_changes (
    seq    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    op     text NOT NULL CHECK (op IN ('insert', 'update', 'delete', 'truncate')),
    key_id text COLLATE "C" NOT NULL,
    at     timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Pruning by age.
CREATE INDEX apikey_changes_at ON apikey_changes (at);

CREATE FUNCTION apikey_keys_log_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('apikey_changes:' || current_schema(), 0));
    IF TG_LEVEL = 'STATEMENT' THEN
        INSERT INTO apikey_changes (op, key_id) VALUES ('truncate', '');
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO apikey_changes (op, key_id) VALUES ('delete', OLD.id);
    ELSE
        INSERT INTO apikey_changes (op, key_id) VALUES (lower(TG_OP), NEW.id);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER apikey_keys_log_change
AFTER INSERT OR UPDATE OF id, prefix, name, owner, scopes, metadata, hash, created_at, expires_at, revoked_at OR DELETE
ON apikey_keys
FOR EACH ROW EXECUTE FUNCTION apikey_keys_log_change();

CREATE TRIGGER apikey_keys_log_truncate
AFTER TRUNCATE ON apikey_keys
FOR EACH STATEMENT EXECUTE FUNCTION apikey_keys_log_change();

-- The Managers that cache keys (apikey.InstanceRegistry): each writes its
-- heartbeat with the highest change it has applied, and counts as live
-- until live_until, by the database's clock. Strict revocations wait for
-- every live one.
CREATE TABLE apikey_instances (
    id           text COLLATE "C" PRIMARY KEY,
    name         text NOT NULL,
    started_at   timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL,
    live_until   timestamptz NOT NULL,
    acked_seq    bigint NOT NULL
);

-- The trigger resolves apikey_changes in this schema, and current_schema()
-- names it, whatever the search_path of the session that fires it.
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION apikey_keys_log_change() SET search_path = %I, pg_temp', current_schema());
END;
$$;

-- Like every trigger of apikey_keys (0005), these fire whatever the
-- session's session_replication_role.
ALTER TABLE apikey_keys ENABLE ALWAYS TRIGGER apikey_keys_log_change;
ALTER TABLE apikey_keys ENABLE ALWAYS TRIGGER apikey_keys_log_truncate;
