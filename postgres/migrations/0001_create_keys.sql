-- apikey_keys holds one row per key: the record and the algorithm-tagged
-- digest of the token, never the token itself.
--
-- id is compared byte-wise (COLLATE "C") whatever the database's collation,
-- so that the list order (created_at DESC, id DESC) and the cursors built on
-- it match the SQLite store and Go's string order.
CREATE TABLE apikey_keys (
    id           text COLLATE "C" PRIMARY KEY,
    prefix       text NOT NULL,
    name         text NOT NULL,
    owner        text NOT NULL DEFAULT '',
    scopes       text[] NOT NULL DEFAULT '{}'
        CHECK (cardinality(scopes) = 0 OR (array_ndims(scopes) = 1 AND array_position(scopes, NULL) IS NULL)),
    metadata     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    hash         text NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz
);

-- Per-owner counts (the key limit) and owner filters.
CREATE INDEX apikey_keys_owner ON apikey_keys (owner);

-- The list order: newest first, ties broken by id.
CREATE INDEX apikey_keys_created ON apikey_keys (created_at DESC, id DESC);

-- Revocation is final: once revoked_at is set, no statement may clear or
-- change it, whatever code path issues it. A revoked key is also frozen: its
-- identity, name, scopes, metadata and expiry can no longer change. (Its hash
-- and last_used_at may still be written, and the row may be deleted.)
CREATE FUNCTION apikey_keys_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.revoked_at IS NOT NULL THEN
        IF NEW.revoked_at IS DISTINCT FROM OLD.revoked_at THEN
            RAISE EXCEPTION 'apikey: revocation cannot be undone'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        IF NEW.id IS DISTINCT FROM OLD.id
            OR NEW.prefix IS DISTINCT FROM OLD.prefix
            OR NEW.name IS DISTINCT FROM OLD.name
            OR NEW.owner IS DISTINCT FROM OLD.owner
            OR NEW.scopes IS DISTINCT FROM OLD.scopes
            OR NEW.metadata IS DISTINCT FROM OLD.metadata
            OR NEW.created_at IS DISTINCT FROM OLD.created_at
            OR NEW.expires_at IS DISTINCT FROM OLD.expires_at THEN
            RAISE EXCEPTION 'apikey: a revoked key cannot be changed'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER apikey_keys_guard
BEFORE UPDATE ON apikey_keys
FOR EACH ROW EXECUTE FUNCTION apikey_keys_guard();
