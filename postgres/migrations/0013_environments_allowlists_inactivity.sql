-- Environments, network allowlists and inactivity expiry
-- (apikey.Key.Environment, AllowedCIDRs, InactivityExpiry).
--
-- environment is 'live' or 'test'; the rows of before are live, as are
-- their tokens. allowed_cidrs is a JSON array of normalised ranges as text
-- ('["10.0.0.0/8"]'), as ratelimits is JSON. inactivity_expiry is in
-- microseconds: 0 means the service's default, -1 never.
ALTER TABLE apikey_keys
    ADD COLUMN environment text NOT NULL DEFAULT 'live' CHECK (environment IN ('live', 'test')),
    ADD COLUMN allowed_cidrs text NOT NULL DEFAULT '[]',
    ADD COLUMN inactivity_expiry bigint NOT NULL DEFAULT 0 CHECK (inactivity_expiry >= -1);

-- A key's environment never changes (its tokens carry it), and a revoked
-- key's allowlist and inactivity expiry are frozen with the rest of it.
CREATE FUNCTION apikey_keys_guard_netenv() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.environment IS DISTINCT FROM OLD.environment THEN
        RAISE EXCEPTION 'apikey: a key''s environment cannot be changed'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF OLD.revoked_at IS NOT NULL AND (NEW.allowed_cidrs IS DISTINCT FROM OLD.allowed_cidrs
        OR NEW.inactivity_expiry IS DISTINCT FROM OLD.inactivity_expiry) THEN
        RAISE EXCEPTION 'apikey: a revoked key cannot be changed'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER apikey_keys_guard_netenv
BEFORE UPDATE OF environment, allowed_cidrs, inactivity_expiry ON apikey_keys
FOR EACH ROW EXECUTE FUNCTION apikey_keys_guard_netenv();
ALTER TABLE apikey_keys ENABLE ALWAYS TRIGGER apikey_keys_guard_netenv;

-- A change of these columns reaches the caches as any other change,
-- through the notifications and the change feed. Triggers of their own
-- rather than new apikey_keys_notify and apikey_keys_log_change, so that
-- they compose with the other migrations that redefine those; they fire
-- only when a value changed (the environment never does). An UPDATE that
-- also sets a column of those triggers notifies the key twice: two
-- evictions of one key, which is harmless.
CREATE TRIGGER apikey_keys_notify_netenv
AFTER UPDATE OF allowed_cidrs, inactivity_expiry ON apikey_keys
FOR EACH ROW
WHEN (OLD.allowed_cidrs IS DISTINCT FROM NEW.allowed_cidrs OR OLD.inactivity_expiry IS DISTINCT FROM NEW.inactivity_expiry)
EXECUTE FUNCTION apikey_keys_notify();
ALTER TABLE apikey_keys ENABLE ALWAYS TRIGGER apikey_keys_notify_netenv;

CREATE TRIGGER apikey_keys_log_change_netenv
AFTER UPDATE OF allowed_cidrs, inactivity_expiry ON apikey_keys
FOR EACH ROW
WHEN (OLD.allowed_cidrs IS DISTINCT FROM NEW.allowed_cidrs OR OLD.inactivity_expiry IS DISTINCT FROM NEW.inactivity_expiry)
EXECUTE FUNCTION apikey_keys_log_change();
ALTER TABLE apikey_keys ENABLE ALWAYS TRIGGER apikey_keys_log_change_netenv;
