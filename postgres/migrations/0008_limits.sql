-- Rate limits and usage credits (apikey.RateLimit, apikey.Credits,
-- apikey.Owner).
--
-- A key's rate limits are a JSON array in ratelimits, as the JSON form of
-- apikey.Key writes them. Its balance of credits is credits_remaining (NULL:
-- the key has none, so credits do not limit it), with the refill schedule
-- as JSON in credits_refill and the next refill's instant in
-- credits_next_refill. Spends update the balance columns only, which
-- neither the notifications nor the change feed follow, as they ignore
-- last_used_at: the store decides every spend itself (SELECT ... FOR
-- UPDATE), so no cache holds a balance that matters.
ALTER TABLE apikey_keys
    ADD COLUMN ratelimits text NOT NULL DEFAULT '[]',
    ADD COLUMN credits_remaining bigint CHECK (credits_remaining >= 0),
    ADD COLUMN credits_refill text,
    ADD COLUMN credits_next_refill timestamptz;

-- A change of a key's rate limits reaches the caches as any other change:
-- both column lists gain ratelimits.
DROP TRIGGER apikey_keys_notify ON apikey_keys;
CREATE TRIGGER apikey_keys_notify
AFTER UPDATE OF id, prefix, name, owner, scopes, metadata, hash, created_at, expires_at, revoked_at, ratelimits OR DELETE
ON apikey_keys
FOR EACH ROW EXECUTE FUNCTION apikey_keys_notify();
ALTER TABLE apikey_keys ENABLE ALWAYS TRIGGER apikey_keys_notify;

DROP TRIGGER apikey_keys_log_change ON apikey_keys;
CREATE TRIGGER apikey_keys_log_change
AFTER INSERT OR UPDATE OF id, prefix, name, owner, scopes, metadata, hash, created_at, expires_at, revoked_at, ratelimits OR DELETE
ON apikey_keys
FOR EACH ROW EXECUTE FUNCTION apikey_keys_log_change();
ALTER TABLE apikey_keys ENABLE ALWAYS TRIGGER apikey_keys_log_change;

-- The owners' records: limits and credits shared by all the keys of an
-- owner (apikey_keys.owner). An owner without a row has neither.
CREATE TABLE apikey_owners (
    id                  text COLLATE "C" PRIMARY KEY CHECK (id <> ''),
    ratelimits          text NOT NULL DEFAULT '[]',
    credits_remaining   bigint CHECK (credits_remaining >= 0),
    credits_refill      text,
    credits_next_refill timestamptz,
    updated_at          timestamptz NOT NULL
);

-- Every change of an owner's limits reaches the caches under the id
-- 'owner:' || id (apikey.OwnerSubject), always as an update: in the change
-- feed, numbered under the same lock as the keys' changes (0006), and on
-- the notification channel of the keys (0002).
CREATE FUNCTION apikey_owners_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    subject text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        subject := 'owner:' || OLD.id;
    ELSE
        subject := 'owner:' || NEW.id;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('apikey_changes:' || current_schema(), 0));
    INSERT INTO apikey_changes (op, key_id) VALUES ('update', subject);
    PERFORM pg_notify('apikey_keys', subject);
    RETURN NULL;
END;
$$;

DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION apikey_owners_changed() SET search_path = %I, pg_temp', current_schema());
END;
$$;

CREATE TRIGGER apikey_owners_changed
AFTER INSERT OR UPDATE OF id, ratelimits OR DELETE
ON apikey_owners
FOR EACH ROW EXECUTE FUNCTION apikey_owners_changed();
ALTER TABLE apikey_owners ENABLE ALWAYS TRIGGER apikey_owners_changed;

-- The spends of credits made with an idempotency key, so that a retry
-- spends nothing more (within apikey.IdempotencyWindow) and a refund gives
-- back once what the spend took: cost from the key's balance when
-- key_after is set, and from the owner's when owner_after is.
CREATE TABLE apikey_credit_spends (
    key_id          text COLLATE "C" NOT NULL,
    idempotency_key text COLLATE "C" NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    owner           text NOT NULL DEFAULT '',
    cost            bigint NOT NULL CHECK (cost > 0),
    key_after       bigint,
    owner_after     bigint,
    created_at      timestamptz NOT NULL,
    refunded_at     timestamptz,
    PRIMARY KEY (key_id, idempotency_key)
);

CREATE INDEX apikey_credit_spends_created ON apikey_credit_spends (created_at);
