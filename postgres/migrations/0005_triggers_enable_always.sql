-- The triggers that keep revocation final, revoked ids taken for good, key
-- ids fixed and the audit log append-only, and those that notify caches of
-- changed keys, fire whatever the session's session_replication_role.
--
-- A trigger created with CREATE TRIGGER is enabled "on origin" only: a
-- session that sets session_replication_role = replica (a superuser, a role
-- granted that setting, or a logical replication apply worker) skips it, and
-- could then clear revoked_at or rewrite the audit log. ENABLE ALWAYS makes
-- them fire for every session. `apikey migrate --check` reports any of them
-- that is missing, changed, disabled or no longer ALWAYS.
ALTER TABLE apikey_keys ENABLE ALWAYS TRIGGER apikey_keys_guard;
ALTER TABLE apikey_keys ENABLE ALWAYS TRIGGER apikey_keys_id_immutable;
ALTER TABLE apikey_keys ENABLE ALWAYS TRIGGER apikey_keys_revoked_id_not_reused;
ALTER TABLE apikey_keys ENABLE ALWAYS TRIGGER apikey_keys_tombstone_revoked;
ALTER TABLE apikey_keys ENABLE ALWAYS TRIGGER apikey_keys_tombstone_deleted;
ALTER TABLE apikey_keys ENABLE ALWAYS TRIGGER apikey_keys_notify;
ALTER TABLE apikey_keys ENABLE ALWAYS TRIGGER apikey_keys_notify_truncate;
ALTER TABLE apikey_events ENABLE ALWAYS TRIGGER apikey_events_append_only;
ALTER TABLE apikey_events ENABLE ALWAYS TRIGGER apikey_events_no_truncate;
ALTER TABLE apikey_revoked_ids ENABLE ALWAYS TRIGGER apikey_revoked_ids_append_only;
ALTER TABLE apikey_revoked_ids ENABLE ALWAYS TRIGGER apikey_revoked_ids_no_truncate;
