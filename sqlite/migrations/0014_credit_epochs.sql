-- The epoch of each balance of credits (apikey.Balance): a new one
-- whenever the balance is set, cleared or refilled, so that credits
-- leased from a balance (apikey.SpendRequest.Lease) are given back only
-- to the balance they came from.
ALTER TABLE apikey_keys ADD COLUMN credits_epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE apikey_owners ADD COLUMN credits_epoch INTEGER NOT NULL DEFAULT 0;
