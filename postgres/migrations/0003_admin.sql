-- Admin site users and their server-side sessions (internal/admin).
-- Emails are stored lower-cased; a session is stored by the SHA-256 (hex)
-- of its token, never the token itself.
CREATE TABLE apikey_admin_users (
	email         text PRIMARY KEY CHECK (email <> ''),
	password_hash text NOT NULL,
	created_at    timestamptz NOT NULL
);

CREATE TABLE apikey_admin_sessions (
	id_hash      text PRIMARY KEY,
	email        text NOT NULL REFERENCES apikey_admin_users (email) ON DELETE CASCADE,
	created_at   timestamptz NOT NULL,
	last_seen_at timestamptz NOT NULL,
	expires_at   timestamptz NOT NULL
);

CREATE INDEX apikey_admin_sessions_expires_at ON apikey_admin_sessions (expires_at);
CREATE INDEX apikey_admin_sessions_last_seen_at ON apikey_admin_sessions (last_seen_at);
