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
