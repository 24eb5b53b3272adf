-- Webhooks (package outbox): endpoints, the outbox of deliveries, the log
-- of attempts, and the time-driven events recorded by the scheduler.
--
-- secret is the endpoint's signing key, "whsec_" and base64: it signs
-- (HMAC-SHA256), so it is kept as it is, like any signing key, not hashed
-- like an API key. Restrict who may read this table. events is the list of
-- event types delivered; empty means every type.
CREATE TABLE apikey_webhook_endpoints (
    id         text COLLATE "C" PRIMARY KEY CHECK (id LIKE 'wh\_%'),
    url        text NOT NULL CHECK (url ~ '^https?://.'),
    events     text[] NOT NULL DEFAULT '{}',
    enabled    boolean NOT NULL DEFAULT true,
    secret     text NOT NULL CHECK (secret LIKE 'whsec\_%'),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

-- One row per event to send to one endpoint. msg_id is the webhook-id,
-- the same for every attempt. Workers claim rows with FOR UPDATE SKIP
-- LOCKED and a lease (lease_owner, lease_until): once the lease ends, any
-- worker may claim the row again. payload is the body of the first
-- attempt, sent again by the retries.
CREATE TABLE apikey_webhook_deliveries (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    msg_id       text COLLATE "C" NOT NULL UNIQUE,
    endpoint_id  text COLLATE "C" NOT NULL REFERENCES apikey_webhook_endpoints (id) ON DELETE CASCADE,
    event_id     bigint NOT NULL,
    event_type   text NOT NULL,
    state        text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts     integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_at      timestamptz NOT NULL,
    lease_owner  text,
    lease_until  timestamptz,
    payload      bytea,
    created_at   timestamptz NOT NULL,
    delivered_at timestamptz,
    last_status  integer NOT NULL DEFAULT 0,
    last_error   text NOT NULL DEFAULT ''
);

CREATE INDEX apikey_webhook_deliveries_due ON apikey_webhook_deliveries (next_at) WHERE state = 'pending';
CREATE INDEX apikey_webhook_deliveries_endpoint ON apikey_webhook_deliveries (endpoint_id, seq);

CREATE TABLE apikey_webhook_attempts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_seq bigint NOT NULL REFERENCES apikey_webhook_deliveries (seq) ON DELETE CASCADE,
    n            integer NOT NULL,
    at           timestamptz NOT NULL,
    status       integer NOT NULL,
    error        text NOT NULL DEFAULT '',
    duration_us  bigint NOT NULL
);

CREATE INDEX apikey_webhook_attempts_delivery ON apikey_webhook_attempts (delivery_seq);

-- The outbox: every entry of the audit log, whatever writes it (this
-- package, plain SQL, COPY), queues one delivery per enabled endpoint
-- whose filter it matches, in the same transaction. Entries about the
-- endpoints themselves are not delivered.
CREATE FUNCTION apikey_events_outbox() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.type LIKE 'webhook.%' THEN
        RETURN NULL;
    END IF;
    INSERT INTO apikey_webhook_deliveries (msg_id, endpoint_id, event_id, event_type, next_at, created_at)
    SELECT 'msg_' || replace(gen_random_uuid()::text, '-', ''), e.id, NEW.id, NEW.type, clock_timestamp(), clock_timestamp()
    FROM apikey_webhook_endpoints e
    WHERE e.enabled AND (cardinality(e.events) = 0 OR NEW.type = ANY (e.events));
    RETURN NULL;
END;
$$;

CREATE TRIGGER apikey_events_outbox
AFTER INSERT ON apikey_events
FOR EACH ROW EXECUTE FUNCTION apikey_events_outbox();

DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION apikey_events_outbox() SET search_path = %I, pg_temp', current_schema());
END;
$$;

-- Like the other triggers of the audit log (0005), it fires whatever the
-- session's session_replication_role.
ALTER TABLE apikey_events ENABLE ALWAYS TRIGGER apikey_events_outbox;

-- The time-driven events recorded (apikey.OccurrenceStore): the primary
-- key lets each be written once, whatever instance records it.
CREATE TABLE apikey_occurrences (
    key_id   text COLLATE "C" NOT NULL,
    type     text NOT NULL,
    due      timestamptz NOT NULL,
    event_id bigint NOT NULL,
    PRIMARY KEY (key_id, type, due)
);
