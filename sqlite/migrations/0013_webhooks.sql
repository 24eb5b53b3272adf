-- Webhooks (package outbox): endpoints, the outbox of deliveries, the log
-- of attempts, and the time-driven events recorded by the scheduler.
--
-- secret is the endpoint's signing key, "whsec_" and base64: it signs
-- (HMAC-SHA256), so it is kept as it is, like any signing key, not hashed
-- like an API key. Protect the database file accordingly. events is a JSON
-- array of event types; empty means every type.
CREATE TABLE apikey_webhook_endpoints (
    id         TEXT NOT NULL PRIMARY KEY CHECK (id GLOB 'wh_*'),
    url        TEXT NOT NULL CHECK (url GLOB 'http://?*' OR url GLOB 'https://?*'),
    events     TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(events) AND json_type(events) = 'array'),
    enabled    INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    secret     TEXT NOT NULL CHECK (secret GLOB 'whsec_?*'),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT, WITHOUT ROWID;

-- One row per event to send to one endpoint. msg_id is the webhook-id,
-- the same for every attempt. A worker claims a row by setting lease_owner
-- and lease_until; once the lease ends, any worker may claim it again.
-- payload is the body of the first attempt, sent again by the retries.
CREATE TABLE apikey_webhook_deliveries (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    msg_id       TEXT NOT NULL UNIQUE,
    endpoint_id  TEXT NOT NULL REFERENCES apikey_webhook_endpoints (id) ON DELETE CASCADE,
    event_id     INTEGER NOT NULL,
    event_type   TEXT NOT NULL,
    state        TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_at      TEXT NOT NULL,
    lease_owner  TEXT,
    lease_until  TEXT,
    payload      BLOB,
    created_at   TEXT NOT NULL,
    delivered_at TEXT,
    last_status  INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT NOT NULL DEFAULT ''
) STRICT;

-- What is due, and the deliveries of one endpoint, newest first.
CREATE INDEX apikey_webhook_deliveries_due ON apikey_webhook_deliveries (next_at) WHERE state = 'pending';
CREATE INDEX apikey_webhook_deliveries_endpoint ON apikey_webhook_deliveries (endpoint_id, seq);

CREATE TABLE apikey_webhook_attempts (
    delivery_seq INTEGER NOT NULL REFERENCES apikey_webhook_deliveries (seq) ON DELETE CASCADE,
    n            INTEGER NOT NULL,
    at           TEXT NOT NULL,
    status       INTEGER NOT NULL,
    error        TEXT NOT NULL DEFAULT '',
    duration_us  INTEGER NOT NULL
) STRICT;

CREATE INDEX apikey_webhook_attempts_delivery ON apikey_webhook_attempts (delivery_seq);

-- The outbox: every entry of the audit log, whatever writes it, queues one
-- delivery per enabled endpoint whose filter it matches, in the same
-- transaction. Entries about the endpoints themselves are not delivered.
-- strftime's %f has milliseconds: three zeros give the fixed-width
-- microsecond layout of every other time column.
CREATE TRIGGER apikey_events_outbox
AFTER INSERT ON apikey_events
FOR EACH ROW WHEN NEW.type NOT GLOB 'webhook.*'
BEGIN
    INSERT INTO apikey_webhook_deliveries (msg_id, endpoint_id, event_id, event_type, next_at, created_at)
    SELECT 'msg_' || lower(hex(randomblob(16))), e.id, NEW.id, NEW.type,
           strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'), strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')
    FROM apikey_webhook_endpoints e
    WHERE e.enabled = 1
      AND (json_array_length(e.events) = 0 OR EXISTS (SELECT 1 FROM json_each(e.events) WHERE value = NEW.type));
END;

-- The time-driven events recorded (apikey.OccurrenceStore): the primary
-- key lets each be written once, whatever process records it.
CREATE TABLE apikey_occurrences (
    key_id   TEXT NOT NULL,
    type     TEXT NOT NULL,
    due      TEXT NOT NULL,
    event_id INTEGER NOT NULL,
    PRIMARY KEY (key_id, type, due)
) STRICT, WITHOUT ROWID;
