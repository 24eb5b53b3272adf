-- Search that scales (KeyFilter.Search: a substring of the name, id or
-- owner, ignoring case): trigram indexes of pg_trgm on the three columns,
-- which List's ILIKE conditions use (it keeps its exact test beside them).
--
-- pg_trgm ships with PostgreSQL but creating an extension needs the
-- privilege to: when it is not installed and cannot be, this migration
-- skips the indexes with a notice, and search scans as before. It is
-- created in schema public, not in the schema of these tables, so that
-- dropping one apikey schema never drops the indexes of another; when it
-- is installed already, wherever, that installation is used. Install it
-- later (CREATE EXTENSION pg_trgm) and create the indexes as below by hand
-- to get them.
DO $$
DECLARE
    trgm name;
BEGIN
    SELECT n.nspname INTO trgm FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm';
    IF trgm IS NULL THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;
            trgm := 'public';
        EXCEPTION WHEN OTHERS THEN
            RAISE NOTICE 'apikey: pg_trgm cannot be installed (%): key search will scan the keys', SQLERRM;
            RETURN;
        END;
    END IF;
    EXECUTE format('CREATE INDEX apikey_keys_name_trgm ON apikey_keys USING gin (name %I.gin_trgm_ops)', trgm);
    EXECUTE format('CREATE INDEX apikey_keys_id_trgm ON apikey_keys USING gin (id %I.gin_trgm_ops)', trgm);
    EXECUTE format('CREATE INDEX apikey_keys_owner_trgm ON apikey_keys USING gin (owner %I.gin_trgm_ops)', trgm);
END
$$;

-- The state filters, in list order: revoked keys, and keys with an expiry
-- (the expired ones among them), are usually few; scanning every key for
-- them newest first would read the whole table.
CREATE INDEX apikey_keys_revoked_created ON apikey_keys (created_at DESC, id DESC) WHERE revoked_at IS NOT NULL;
CREATE INDEX apikey_keys_expiring_created ON apikey_keys (created_at DESC, id DESC) WHERE revoked_at IS NULL AND expires_at IS NOT NULL;
