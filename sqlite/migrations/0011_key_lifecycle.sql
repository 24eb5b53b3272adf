-- Disabling keys (apikey.Manager.Disable) and rolling with a grace window
-- (apikey.RollOptions).
--
-- disabled_at is set while a key is disabled. The prev_ columns hold the
-- previous secret of a roll with a grace window (apikey.PreviousSecret):
-- its digest, the roll's instant, the grace in microseconds, when the
-- window starts ('first_use' or 'now'), when it started (NULL until the
-- first use of the new secret), its upper bound, and its last use. prev_hash
-- is NULL when the key has no previous secret.
ALTER TABLE apikey_keys ADD COLUMN disabled_at TEXT;
ALTER TABLE apikey_keys ADD COLUMN prev_hash TEXT;
ALTER TABLE apikey_keys ADD COLUMN prev_rolled_at TEXT;
ALTER TABLE apikey_keys ADD COLUMN prev_grace_us INTEGER CHECK (prev_grace_us > 0);
ALTER TABLE apikey_keys ADD COLUMN prev_grace_starts TEXT CHECK (prev_grace_starts IN ('first_use', 'now'));
ALTER TABLE apikey_keys ADD COLUMN prev_started_at TEXT;
ALTER TABLE apikey_keys ADD COLUMN prev_expires_at TEXT;
ALTER TABLE apikey_keys ADD COLUMN prev_last_used_at TEXT;

-- Disabling, enabling and the start of a grace window reach the caches as
-- any other change (prev_last_used_at, written by usage flushes, does not).
DROP TRIGGER apikey_keys_change_on_update;
CREATE TRIGGER apikey_keys_change_on_update
AFTER UPDATE OF id, prefix, name, owner, scopes, metadata, hash, created_at, expires_at, revoked_at, ratelimits,
    disabled_at, prev_hash, prev_started_at, prev_expires_at ON apikey_keys
FOR EACH ROW
BEGIN
    INSERT INTO apikey_changes (op, key_id, at) VALUES ('update', NEW.id, strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'));
END;

-- A revoked key is frozen: it can be neither disabled nor enabled.
CREATE TRIGGER apikey_keys_revoked_not_disabled
BEFORE UPDATE OF disabled_at ON apikey_keys
FOR EACH ROW
WHEN OLD.revoked_at IS NOT NULL AND NEW.disabled_at IS NOT OLD.disabled_at
BEGIN
    SELECT RAISE(ABORT, 'apikey: a revoked key cannot be changed');
END;
