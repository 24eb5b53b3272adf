-- Revocation outlives the row. The guard of 0001 stops an UPDATE from
-- clearing revoked_at, but not a DELETE of the revoked row followed by an
-- INSERT of the same id, unrevoked, with the same hash: that brought the
-- revoked token back.
--
-- apikey_revoked_ids keeps, for good, the id of every key that was ever
-- revoked (a tombstone), and no key may be inserted with such an id. A
-- tombstone is written as soon as a key is revoked (or inserted revoked,
-- COPY included), not only when it is deleted: TRUNCATE removes rows
-- without firing row triggers. Deleting a revoked key (Store.Delete) stays
-- allowed; its tombstone stays behind.

-- No key changes while the existing revocations are copied below.
LOCK TABLE apikey_keys IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE apikey_revoked_ids (
    id text COLLATE "C" PRIMARY KEY
);

-- Every key already revoked.
INSERT INTO apikey_revoked_ids (id)
SELECT id FROM apikey_keys WHERE revoked_at IS NOT NULL;

-- The tombstones are append-only: none may be changed, deleted or
-- truncated.
CREATE FUNCTION apikey_revoked_ids_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'apikey: revoked key ids are kept for good'
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;

CREATE TRIGGER apikey_revoked_ids_append_only
BEFORE UPDATE OR DELETE ON apikey_revoked_ids
FOR EACH ROW EXECUTE FUNCTION apikey_revoked_ids_append_only();

CREATE TRIGGER apikey_revoked_ids_no_truncate
BEFORE TRUNCATE ON apikey_revoked_ids
FOR EACH STATEMENT EXECUTE FUNCTION apikey_revoked_ids_append_only();

-- Record the id of a key that is revoked, inserted revoked, or deleted while
-- revoked.
CREATE FUNCTION apikey_keys_tombstone() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO apikey_revoked_ids (id) VALUES (OLD.id) ON CONFLICT (id) DO NOTHING;
    ELSE
        INSERT INTO apikey_revoked_ids (id) VALUES (NEW.id) ON CONFLICT (id) DO NOTHING;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER apikey_keys_tombstone_revoked
AFTER INSERT OR UPDATE OF revoked_at ON apikey_keys
FOR EACH ROW
WHEN (NEW.revoked_at IS NOT NULL)
EXECUTE FUNCTION apikey_keys_tombstone();

CREATE TRIGGER apikey_keys_tombstone_deleted
AFTER DELETE ON apikey_keys
FOR EACH ROW
WHEN (OLD.revoked_at IS NOT NULL)
EXECUTE FUNCTION apikey_keys_tombstone();

-- A revoked id can never be used again, whatever the statement (COPY
-- included). The error is a unique_violation: the id is taken for good, and
-- the store reports it as apikey.ErrDuplicateID.
CREATE FUNCTION apikey_keys_revoked_id_not_reused() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM apikey_revoked_ids WHERE id = NEW.id) THEN
        RAISE EXCEPTION 'apikey: revoked key ids cannot be reused'
            USING ERRCODE = 'unique_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER apikey_keys_revoked_id_not_reused
BEFORE INSERT ON apikey_keys
FOR EACH ROW EXECUTE FUNCTION apikey_keys_revoked_id_not_reused();

-- A key's id never changes: moving another row onto a revoked id (after
-- deleting the revoked row) would give that id an unrevoked key.
CREATE FUNCTION apikey_keys_id_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'apikey: a key id cannot be changed'
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;

CREATE TRIGGER apikey_keys_id_immutable
BEFORE UPDATE OF id ON apikey_keys
FOR EACH ROW
WHEN (NEW.id IS DISTINCT FROM OLD.id)
EXECUTE FUNCTION apikey_keys_id_immutable();

-- The functions that read or write apikey_revoked_ids resolve it in this
-- schema, whatever the search_path of the session that fires them, and
-- never in pg_temp (which a session's search_path searches first unless
-- told otherwise).
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION apikey_keys_tombstone() SET search_path = %I, pg_temp', current_schema());
    EXECUTE format('ALTER FUNCTION apikey_keys_revoked_id_not_reused() SET search_path = %I, pg_temp', current_schema());
END;
$$;
