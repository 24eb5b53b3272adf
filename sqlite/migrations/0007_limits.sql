-- Rate limits and usage credits (apikey.RateLimit, apikey.Credits,
-- apikey.Owner).
--
-- A key's rate limits are a JSON array in ratelimits, as the JSON form of
-- apikey.Key writes them. Its balance of credits is credits_remaining (NULL:
-- the key has none, so credits do not limit it), with the refill schedule
-- as JSON in credits_refill and the next refill's instant in
-- credits_next_refill. Spends update the balance columns only, which the
-- change feed ignores, as it ignores last_used_at: the store decides every
-- spend itself, so no cache holds a balance that matters.
ALTER TABLE apikey_keys ADD COLUMN ratelimits TEXT NOT NULL DEFAULT '[]';
ALTER TABLE apikey_keys ADD COLUMN credits_remaining INTEGER CHECK (credits_remaining >= 0);
ALTER TABLE apikey_keys ADD COLUMN credits_refill TEXT;
ALTER TABLE apikey_keys ADD COLUMN credits_next_refill TEXT;

-- A change of a key's rate limits reaches the caches as any other change.
DROP TRIGGER apikey_keys_change_on_update;
CREATE TRIGGER apikey_keys_change_on_update
AFTER UPDATE OF id, prefix, name, owner, scopes, metadata, hash, created_at, expires_at, revoked_at, ratelimits ON apikey_keys
FOR EACH ROW
BEGIN
    INSERT INTO apikey_changes (op, key_id, at) VALUES ('update', NEW.id, strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'));
END;

-- The owners' records: limits and credits shared by all the keys of an
-- owner (apikey_keys.owner). An owner without a row has neither.
CREATE TABLE apikey_owners (
    id                  TEXT NOT NULL PRIMARY KEY CHECK (id <> ''),
    ratelimits          TEXT NOT NULL DEFAULT '[]',
    credits_remaining   INTEGER CHECK (credits_remaining >= 0),
    credits_refill      TEXT,
    credits_next_refill TEXT,
    updated_at          TEXT NOT NULL
) STRICT, WITHOUT ROWID;

-- Every change of an owner's limits reaches the caches through the change
-- feed, under the id 'owner:' || id (apikey.OwnerSubject), always as an
-- update: a cache evicts it, whatever it held.
CREATE TRIGGER apikey_owners_change_on_insert
AFTER INSERT ON apikey_owners
FOR EACH ROW
BEGIN
    INSERT INTO apikey_changes (op, key_id, at) VALUES ('update', 'owner:' || NEW.id, strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'));
END;

CREATE TRIGGER apikey_owners_change_on_update
AFTER UPDATE OF id, ratelimits ON apikey_owners
FOR EACH ROW
BEGIN
    INSERT INTO apikey_changes (op, key_id, at) VALUES ('update', 'owner:' || NEW.id, strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'));
END;

CREATE TRIGGER apikey_owners_change_on_delete
AFTER DELETE ON apikey_owners
FOR EACH ROW
BEGIN
    INSERT INTO apikey_changes (op, key_id, at) VALUES ('update', 'owner:' || OLD.id, strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'));
END;

-- The spends of credits made with an idempotency key, so that a retry
-- spends nothing more (within apikey.IdempotencyWindow) and a refund gives
-- back once what the spend took: cost from the key's balance when
-- key_after is set, and from the owner's when owner_after is.
CREATE TABLE apikey_credit_spends (
    key_id          TEXT NOT NULL,
    idempotency_key TEXT NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    owner           TEXT NOT NULL DEFAULT '',
    cost            INTEGER NOT NULL CHECK (cost > 0),
    key_after       INTEGER,
    owner_after     INTEGER,
    created_at      TEXT NOT NULL,
    refunded_at     TEXT,
    PRIMARY KEY (key_id, idempotency_key)
) STRICT, WITHOUT ROWID;

CREATE INDEX apikey_credit_spends_created ON apikey_credit_spends (created_at);
