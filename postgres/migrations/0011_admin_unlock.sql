-- Unlocking an admin account (apikey admin users unlock): the running
-- server's login throttle ignores the account's failed logins recorded
-- before unlocked_at.
ALTER TABLE apikey_admin_users ADD COLUMN unlocked_at timestamptz;
