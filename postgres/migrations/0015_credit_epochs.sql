-- The epoch of a balance of credits (apikey.Balance.Epoch): the store gives
-- it a new value (apikey.NextEpoch) whenever the balance is set, cleared or
-- refilled, and keeps it when the balance is spent from, added to or
-- refunded, so that credits leased from a balance (apikey.SpendRequest.Lease)
-- are given back (Return) only to that balance, never to one set since.
-- Like the balance columns, neither the notifications nor the change feed
-- follow it.
ALTER TABLE apikey_keys
    ADD COLUMN credits_epoch bigint NOT NULL DEFAULT 0;

ALTER TABLE apikey_owners
    ADD COLUMN credits_epoch bigint NOT NULL DEFAULT 0;

-- A new epoch (the balance set, cleared or refilled) reaches the caches,
-- and with them the leases of the other instances, as any change of a key
-- or an owner does (NOTIFY and the change feed); a spend, which writes the
-- epoch unchanged, does not.
CREATE TRIGGER apikey_keys_notify_credits
AFTER UPDATE OF credits_epoch ON apikey_keys
FOR EACH ROW WHEN (OLD.credits_epoch IS DISTINCT FROM NEW.credits_epoch)
EXECUTE FUNCTION apikey_keys_notify();
ALTER TABLE apikey_keys ENABLE ALWAYS TRIGGER apikey_keys_notify_credits;

CREATE TRIGGER apikey_keys_log_change_credits
AFTER UPDATE OF credits_epoch ON apikey_keys
FOR EACH ROW WHEN (OLD.credits_epoch IS DISTINCT FROM NEW.credits_epoch)
EXECUTE FUNCTION apikey_keys_log_change();
ALTER TABLE apikey_keys ENABLE ALWAYS TRIGGER apikey_keys_log_change_credits;

CREATE TRIGGER apikey_owners_changed_credits
AFTER UPDATE OF credits_epoch ON apikey_owners
FOR EACH ROW WHEN (OLD.credits_epoch IS DISTINCT FROM NEW.credits_epoch)
EXECUTE FUNCTION apikey_owners_changed();
ALTER TABLE apikey_owners ENABLE ALWAYS TRIGGER apikey_owners_changed_credits;
