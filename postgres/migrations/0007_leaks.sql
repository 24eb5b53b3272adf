-- Leaked keys (apikey.Manager.ReportLeak): a key found in public, such as a
-- report of GitHub's secret scanning partner program.
--
-- The audit entry of a leak (type key.leaked) names where the key was found:
-- url is empty for every other entry. (A column with a constant default is
-- added without rewriting the table.)
ALTER TABLE apikey_events ADD COLUMN url text NOT NULL DEFAULT '';

-- apikey_leaks holds one row per confirmed leak: the key, where it was
-- found (url, source: both as reported, possibly empty), when it was
-- reported and what the leak policy did (action). Like the audit log, it
-- has no foreign key to apikey_keys: a deleted key keeps its leaks. A report
-- repeated (the same key, url and source) is refused by the unique index,
-- so that a retried delivery records nothing twice. The service role may
-- only read and add rows (see Grant).
CREATE TABLE apikey_leaks (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key_id      text COLLATE "C" NOT NULL CHECK (key_id <> ''),
    owner       text NOT NULL DEFAULT '',
    url         text NOT NULL DEFAULT '',
    source      text NOT NULL DEFAULT '',
    reported_at timestamptz NOT NULL,
    action      text NOT NULL CHECK (action IN ('revoke', 'notify'))
);

-- md5 keeps the index entries small whatever the length of the url.
CREATE UNIQUE INDEX apikey_leaks_report ON apikey_leaks (key_id, md5(url), source);
CREATE INDEX apikey_leaks_key ON apikey_leaks (key_id, id);
