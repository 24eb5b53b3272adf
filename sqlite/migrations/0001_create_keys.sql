-- apikey_keys holds one row per key: the record and the algorithm-tagged
-- digest of the token, never the token itself.
--
-- Times are TEXT in fixed-width UTC, 2006-01-02T15:04:05.000000Z, so that
-- they sort lexicographically in time order and stay readable; NULL is unset.
CREATE TABLE apikey_keys (
    id           TEXT NOT NULL PRIMARY KEY,
    prefix       TEXT NOT NULL,
    name         TEXT NOT NULL,
    owner        TEXT NOT NULL DEFAULT '',
    scopes       TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(scopes) AND json_type(scopes) = 'array'),
    metadata     TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata) AND json_type(metadata) = 'object'),
    hash         TEXT NOT NULL,
    created_at   TEXT NOT NULL
        CHECK (created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'),
    expires_at   TEXT
        CHECK (expires_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'),
    revoked_at   TEXT
        CHECK (revoked_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'),
    last_used_at TEXT
        CHECK (last_used_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z')
) STRICT;

-- Per-owner counts (the key limit) and owner filters.
CREATE INDEX apikey_keys_owner ON apikey_keys (owner, revoked_at);

-- The list order: newest first, ties broken by id.
CREATE INDEX apikey_keys_created ON apikey_keys (created_at DESC, id DESC);

-- Revocation is final: once revoked_at is set, no statement may clear or
-- change it, whatever code path issues it.
CREATE TRIGGER apikey_keys_revocation_final
BEFORE UPDATE OF revoked_at ON apikey_keys
FOR EACH ROW
WHEN OLD.revoked_at IS NOT NULL AND NEW.revoked_at IS NOT OLD.revoked_at
BEGIN
    SELECT RAISE(ABORT, 'apikey: revocation cannot be undone');
END;

-- A revoked key is frozen: its identity, name, scopes, metadata and expiry
-- can no longer change. (Its hash may still be replaced, and the row may be
-- deleted.)
CREATE TRIGGER apikey_keys_revoked_frozen
BEFORE UPDATE OF id, prefix, name, owner, scopes, metadata, created_at, expires_at ON apikey_keys
FOR EACH ROW
WHEN OLD.revoked_at IS NOT NULL
    AND (NEW.id IS NOT OLD.id OR NEW.prefix IS NOT OLD.prefix OR NEW.name IS NOT OLD.name
        OR NEW.owner IS NOT OLD.owner OR NEW.scopes IS NOT OLD.scopes OR NEW.metadata IS NOT OLD.metadata
        OR NEW.created_at IS NOT OLD.created_at OR NEW.expires_at IS NOT OLD.expires_at)
BEGIN
    SELECT RAISE(ABORT, 'apikey: a revoked key cannot be changed');
END;

-- INSERT OR REPLACE would silently delete a revoked row and insert a fresh,
-- unrevoked one with the same id: refuse any insert over a revoked id.
CREATE TRIGGER apikey_keys_revoked_not_replaced
BEFORE INSERT ON apikey_keys
FOR EACH ROW
WHEN EXISTS (SELECT 1 FROM apikey_keys WHERE id = NEW.id AND revoked_at IS NOT NULL)
BEGIN
    SELECT RAISE(ABORT, 'apikey: revocation cannot be undone');
END;
