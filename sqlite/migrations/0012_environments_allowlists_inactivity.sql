-- Environments, network allowlists and inactivity expiry
-- (apikey.Key.Environment, AllowedCIDRs, InactivityExpiry).
--
-- environment is 'live' or 'test'; the rows of before are live, as are
-- their tokens. allowed_cidrs is a JSON array of normalised ranges as text
-- ('["10.0.0.0/8"]'). inactivity_expiry is in microseconds: 0 means the
-- service's default, -1 never (the Go value is nanoseconds; microseconds
-- keep the column exact for every duration the Manager accepts).
ALTER TABLE apikey_keys ADD COLUMN environment TEXT NOT NULL DEFAULT 'live' CHECK (environment IN ('live', 'test'));
ALTER TABLE apikey_keys ADD COLUMN allowed_cidrs TEXT NOT NULL DEFAULT '[]';
ALTER TABLE apikey_keys ADD COLUMN inactivity_expiry INTEGER NOT NULL DEFAULT 0 CHECK (inactivity_expiry >= -1);

-- A change of these columns reaches the caches as any other change. A
-- trigger of its own rather than a new apikey_keys_change_on_update, so
-- that it composes with the other migrations that redefine that one; it
-- fires only when a value changed (the environment never does). A
-- statement that also sets a column of apikey_keys_change_on_update (the
-- store's Update sets them all) then logs the key twice: two evictions of
-- one key, which is harmless.
CREATE TRIGGER apikey_keys_change_on_update_netenv
AFTER UPDATE OF allowed_cidrs, inactivity_expiry ON apikey_keys
FOR EACH ROW
WHEN NEW.allowed_cidrs IS NOT OLD.allowed_cidrs OR NEW.inactivity_expiry IS NOT OLD.inactivity_expiry
BEGIN
    INSERT INTO apikey_changes (op, key_id, at) VALUES ('update', NEW.id, strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'));
END;

-- A key's environment never changes: its tokens carry it.
CREATE TRIGGER apikey_keys_environment_immutable
BEFORE UPDATE OF environment ON apikey_keys
FOR EACH ROW
WHEN NEW.environment IS NOT OLD.environment
BEGIN
    SELECT RAISE(ABORT, 'apikey: a key''s environment cannot be changed');
END;

-- A revoked key is frozen, these columns included.
CREATE TRIGGER apikey_keys_revoked_frozen_netenv
BEFORE UPDATE OF allowed_cidrs, inactivity_expiry ON apikey_keys
FOR EACH ROW
WHEN OLD.revoked_at IS NOT NULL
    AND (NEW.allowed_cidrs IS NOT OLD.allowed_cidrs OR NEW.inactivity_expiry IS NOT OLD.inactivity_expiry)
BEGIN
    SELECT RAISE(ABORT, 'apikey: a revoked key cannot be changed');
END;
