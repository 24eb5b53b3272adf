-- The epoch of each balance of credits (apikey.Balance): a new one
-- whenever the balance is set, cleared or refilled, so that credits
-- leased from a balance (apikey.SpendRequest.Lease) are given back only
-- to the balance they came from.
ALTER TABLE apikey_keys ADD COLUMN credits_epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE apikey_owners ADD COLUMN credits_epoch INTEGER NOT NULL DEFAULT 0;

-- A new epoch (the balance set, cleared or refilled) reaches the caches,
-- and with them the leases of the other instances, as any change of a key
-- or an owner does; a spend, which writes the epoch unchanged, does not.
CREATE TRIGGER apikey_keys_change_on_credits_epoch
AFTER UPDATE OF credits_epoch ON apikey_keys
FOR EACH ROW
WHEN NEW.credits_epoch IS NOT OLD.credits_epoch
BEGIN
    INSERT INTO apikey_changes (op, key_id, at) VALUES ('update', NEW.id, strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'));
END;

CREATE TRIGGER apikey_owners_change_on_credits_epoch
AFTER UPDATE OF credits_epoch ON apikey_owners
FOR EACH ROW
WHEN NEW.credits_epoch IS NOT OLD.credits_epoch
BEGIN
    INSERT INTO apikey_changes (op, key_id, at) VALUES ('update', 'owner:' || NEW.id, strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'));
END;
