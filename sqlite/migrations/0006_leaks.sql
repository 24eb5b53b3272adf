-- Leaked keys (apikey.Manager.ReportLeak): a key found in public, such as a
-- report of GitHub's secret scanning partner program.
--
-- The audit entry of a leak (type key.leaked) names where the key was found:
-- url is empty for every other entry.
ALTER TABLE apikey_events ADD COLUMN url TEXT NOT NULL DEFAULT '';

-- apikey_leaks holds one row per confirmed leak: the key, where it was
-- found (url, source: both as reported, possibly empty), when it was
-- reported and what the leak policy did (action). Like the audit log, it
-- has no foreign key to apikey_keys: a deleted key keeps its leaks. A report
-- repeated (the same key, url and source) is refused by the unique index,
-- so that a retried delivery records nothing twice.
CREATE TABLE apikey_leaks (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    key_id      TEXT NOT NULL CHECK (key_id <> ''),
    owner       TEXT NOT NULL DEFAULT '',
    url         TEXT NOT NULL DEFAULT '',
    source      TEXT NOT NULL DEFAULT '',
    reported_at TEXT NOT NULL
        CHECK (reported_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'),
    action      TEXT NOT NULL CHECK (action IN ('revoke', 'notify'))
) STRICT;

CREATE UNIQUE INDEX apikey_leaks_report ON apikey_leaks (key_id, url, source);
