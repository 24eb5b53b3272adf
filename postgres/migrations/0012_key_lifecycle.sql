-- Disabling keys (apikey.Manager.Disable) and rolling with a grace window
-- (apikey.RollOptions).
--
-- disabled_at is set while a key is disabled. The prev_ columns hold the
-- previous secret of a roll with a grace window (apikey.PreviousSecret):
-- its digest, the roll's instant, the grace in microseconds, when the
-- window starts ('first_use' or 'now'), when it started (NULL until the
-- first use of the new secret), its upper bound, and its last use. prev_hash
-- and prev_rolled_at are NULL exactly when the key has no previous secret.
ALTER TABLE apikey_keys
    ADD COLUMN disabled_at timestamptz,
    ADD COLUMN prev_hash text,
    ADD COLUMN prev_rolled_at timestamptz,
    ADD COLUMN prev_grace_us bigint CHECK (prev_grace_us > 0),
    ADD COLUMN prev_grace_starts text CHECK (prev_grace_starts IN ('first_use', 'now')),
    ADD COLUMN prev_started_at timestamptz,
    ADD COLUMN prev_expires_at timestamptz,
    ADD COLUMN prev_last_used_at timestamptz,
    ADD CONSTRAINT apikey_keys_prev_complete CHECK ((prev_hash IS NULL) = (prev_rolled_at IS NULL)
        AND (prev_hash IS NULL) = (prev_grace_us IS NULL) AND (prev_hash IS NULL) = (prev_expires_at IS NULL)
        AND (prev_hash IS NULL) = (prev_grace_starts IS NULL));

-- Disabling, enabling and the start of a grace window reach the caches as
-- any other change, through the notifications (0002) and the change feed
-- (0006); prev_last_used_at, written by usage flushes, does not.
DROP TRIGGER apikey_keys_notify ON apikey_keys;
CREATE TRIGGER apikey_keys_notify
AFTER UPDATE OF id, prefix, name, owner, scopes, metadata, hash, created_at, expires_at, revoked_at, ratelimits,
    disabled_at, prev_hash, prev_started_at, prev_expires_at OR DELETE
ON apikey_keys
FOR EACH ROW EXECUTE FUNCTION apikey_keys_notify();
ALTER TABLE apikey_keys ENABLE ALWAYS TRIGGER apikey_keys_notify;

DROP TRIGGER apikey_keys_log_change ON apikey_keys;
CREATE TRIGGER apikey_keys_log_change
AFTER INSERT OR UPDATE OF id, prefix, name, owner, scopes, metadata, hash, created_at, expires_at, revoked_at, ratelimits,
    disabled_at, prev_hash, prev_started_at, prev_expires_at OR DELETE
ON apikey_keys
FOR EACH ROW EXECUTE FUNCTION apikey_keys_log_change();
ALTER TABLE apikey_keys ENABLE ALWAYS TRIGGER apikey_keys_log_change;

-- A revoked key is frozen: it can be neither disabled nor enabled.
CREATE FUNCTION apikey_keys_revoked_not_disabled() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.revoked_at IS NOT NULL AND NEW.disabled_at IS DISTINCT FROM OLD.disabled_at THEN
        RAISE EXCEPTION 'apikey: a revoked key cannot be changed'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER apikey_keys_revoked_not_disabled
BEFORE UPDATE OF disabled_at ON apikey_keys
FOR EACH ROW EXECUTE FUNCTION apikey_keys_revoked_not_disabled();
ALTER TABLE apikey_keys ENABLE ALWAYS TRIGGER apikey_keys_revoked_not_disabled;
