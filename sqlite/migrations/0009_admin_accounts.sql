-- Admin accounts (internal/admin): a role (admin: every page and action;
-- viewer: read-only), disabling an account without deleting it, and an
-- optional TOTP secret (RFC 6238) for two-factor sign-in.
ALTER TABLE apikey_admin_users ADD COLUMN role TEXT NOT NULL DEFAULT 'admin' CHECK (role IN ('admin', 'viewer'));
ALTER TABLE apikey_admin_users ADD COLUMN disabled_at TEXT;
ALTER TABLE apikey_admin_users ADD COLUMN totp_secret TEXT;
