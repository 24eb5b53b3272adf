-- Admin site users and their server-side sessions (internal/admin).
-- Emails are stored lower-cased; a session is stored by the SHA-256 (hex)
-- of its token, never the token itself.
CREATE TABLE apikey_admin_users (
	email         TEXT PRIMARY KEY,
	password_hash TEXT NOT NULL,
	created_at    TEXT NOT NULL
);

CREATE TABLE apikey_admin_sessions (
	id_hash      TEXT PRIMARY KEY,
	email        TEXT NOT NULL REFERENCES apikey_admin_users (email) ON DELETE CASCADE,
	created_at   TEXT NOT NULL,
	last_seen_at TEXT NOT NULL,
	expires_at   TEXT NOT NULL
);

CREATE INDEX apikey_admin_sessions_expires_at ON apikey_admin_sessions (expires_at);
CREATE INDEX apikey_admin_sessions_last_seen_at ON apikey_admin_sessions (last_seen_at);
