package postgres_test

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/postgres"
)

func TestCheckIntegrityFresh(t *testing.T) {
	s := newStore(t)
	if err := s.CheckIntegrity(t.Context()); err != nil {
		t.Fatalf("CheckIntegrity of a freshly migrated schema: %v", err)
	}
}

func TestCheckIntegrityNotMigrated(t *testing.T) {
	dsn := testDSN(t)
	s := openStore(t, dsn, newSchema(t, dsn))
	err := s.CheckIntegrity(t.Context())
	if !errors.Is(err, postgres.ErrIntegrity) || !strings.Contains(err.Error(), "apikey migrate") {
		t.Errorf("CheckIntegrity before Migrate: %v, want ErrIntegrity telling to migrate", err)
	}
}

// TestCheckIntegrityDetects tampers with a fresh schema in every way the
// check knows, one per subtest, and wants a loud error naming the damage.
func TestCheckIntegrityDetects(t *testing.T) {
	for _, tt := range []struct {
		name   string
		tamper []string
		want   []string
	}{
		{"trigger disabled", []string{"ALTER TABLE apikey_keys DISABLE TRIGGER apikey_keys_guard"},
			[]string{"trigger apikey_keys_guard on apikey_keys is disabled"}},
		{"all triggers disabled", []string{"ALTER TABLE apikey_events DISABLE TRIGGER USER"},
			[]string{"trigger apikey_events_append_only on apikey_events is disabled", "trigger apikey_events_no_truncate on apikey_events is disabled"}},
		{"trigger back to origin only", []string{"ALTER TABLE apikey_keys ENABLE TRIGGER apikey_keys_tombstone_revoked"},
			[]string{"trigger apikey_keys_tombstone_revoked on apikey_keys is not ENABLE ALWAYS"}},
		{"trigger for replicas only", []string{"ALTER TABLE apikey_revoked_ids ENABLE REPLICA TRIGGER apikey_revoked_ids_append_only"},
			[]string{"trigger apikey_revoked_ids_append_only on apikey_revoked_ids fires only for replica sessions"}},
		{"trigger dropped", []string{"DROP TRIGGER apikey_keys_revoked_id_not_reused ON apikey_keys"},
			[]string{"trigger apikey_keys_revoked_id_not_reused on apikey_keys is missing"}},
		{"trigger narrowed", []string{
			"DROP TRIGGER apikey_keys_guard ON apikey_keys",
			"CREATE TRIGGER apikey_keys_guard BEFORE UPDATE OF name ON apikey_keys FOR EACH ROW EXECUTE FUNCTION apikey_keys_guard()",
			"ALTER TABLE apikey_keys ENABLE ALWAYS TRIGGER apikey_keys_guard"},
			[]string{"trigger apikey_keys_guard on apikey_keys was changed"}},
		{"function replaced", []string{`CREATE OR REPLACE FUNCTION apikey_keys_guard() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END; $$`},
			[]string{"function apikey_keys_guard() of trigger apikey_keys_guard was changed"}},
		{"search_path reset", []string{"ALTER FUNCTION apikey_keys_tombstone() RESET search_path"},
			[]string{"function apikey_keys_tombstone() no longer pins its search_path"}},
		{"extra trigger", []string{"CREATE TRIGGER sneaky BEFORE UPDATE ON apikey_keys FOR EACH ROW EXECUTE FUNCTION apikey_keys_notify()"},
			[]string{"unexpected trigger sneaky on apikey_keys"}},
		{"child table", []string{"CREATE TABLE shadow_keys () INHERITS (apikey_keys)"},
			[]string{"inherits apikey_keys: its rows bypass the triggers"}},
		{"rule", []string{"CREATE RULE skip_updates AS ON UPDATE TO apikey_keys DO INSTEAD NOTHING"},
			[]string{"rule skip_updates on apikey_keys rewrites its statements"}},
		{"row-level security", []string{"ALTER TABLE apikey_keys ENABLE ROW LEVEL SECURITY"},
			[]string{"row-level security is enabled on apikey_keys"}},
		{"primary key dropped", []string{"ALTER TABLE apikey_revoked_ids DROP CONSTRAINT apikey_revoked_ids_pkey"},
			[]string{"constraint apikey_revoked_ids_pkey on apikey_revoked_ids is missing"}},
		{"check not validated", []string{"ALTER TABLE apikey_events DROP CONSTRAINT apikey_events_key_id_check",
			"ALTER TABLE apikey_events ADD CONSTRAINT apikey_events_key_id_check CHECK (key_id <> '') NOT VALID"},
			[]string{"constraint apikey_events_key_id_check on apikey_events is not validated"}},
		{"change log disabled", []string{"ALTER TABLE apikey_keys DISABLE TRIGGER apikey_keys_log_change"},
			[]string{"trigger apikey_keys_log_change on apikey_keys is disabled"}},
		{"change log search_path reset", []string{"ALTER FUNCTION apikey_keys_log_change() RESET search_path"},
			[]string{"function apikey_keys_log_change() no longer pins its search_path"}},
		{"change log swallowed", []string{"CREATE RULE swallow AS ON INSERT TO apikey_changes DO INSTEAD NOTHING"},
			[]string{"rule swallow on apikey_changes rewrites its statements"}},
		{"migration forgotten", []string{"DELETE FROM apikey_migrations WHERE version = 5"},
			[]string{"migration 0005_triggers_enable_always.sql is not applied"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			ctx := t.Context()
			for _, q := range tt.tamper {
				if _, err := s.Pool().Exec(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			err := s.CheckIntegrity(ctx)
			if !errors.Is(err, postgres.ErrIntegrity) {
				t.Fatalf("CheckIntegrity after %q: err = %v, want %v", tt.tamper, err, postgres.ErrIntegrity)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("CheckIntegrity after %q: %v\nwant it to say %q", tt.tamper, err, want)
				}
			}
		})
	}
}

// TestTriggersFireForReplicaSessions: a session with
// session_replication_role = replica skips ordinary triggers; migration
// 0005 makes the guards ENABLE ALWAYS, so revocation stays final and the
// audit log append-only even there.
func TestTriggersFireForReplicaSessions(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	m, err := apikey.NewManager(s, apikey.Config{})
	if err != nil {
		t.Fatal(err)
	}
	k, token, err := m.Create(ctx, apikey.CreateParams{Name: "replica"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	conn, err := s.Pool().Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SET session_replication_role = replica"); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "RESET session_replication_role")
	for _, q := range []string{
		"UPDATE apikey_keys SET revoked_at = NULL WHERE id = '" + k.ID + "'",
		"UPDATE apikey_keys SET name = 'changed' WHERE id = '" + k.ID + "'",
		"DELETE FROM apikey_events",
		"TRUNCATE apikey_events",
		"DELETE FROM apikey_revoked_ids",
	} {
		if _, err := conn.Exec(ctx, q); err == nil {
			t.Errorf("under session_replication_role = replica, %q succeeded", q)
		}
	}
	// Delete the revoked row and insert it back unrevoked: the tombstone
	// (written by an AFTER trigger) refuses it.
	if _, err := conn.Exec(ctx, "DELETE FROM apikey_keys WHERE id = '"+k.ID+"'"); err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, `INSERT INTO apikey_keys (id, prefix, name, hash, created_at) VALUES ($1, 'ak', 'back', 'x', now())`, k.ID)
	if err == nil {
		t.Error("under session_replication_role = replica, a deleted revoked id was inserted again")
	}
	if _, err := m.Verify(ctx, token); err == nil {
		t.Error("the revoked key verifies")
	}
}

// TestChildTablesNeverRead puts a row in a table inheriting apikey_keys
// (which no trigger guards): a deleted revoked key brought back there, and
// a key that never existed. Neither may verify nor be listed.
func TestChildTablesNeverRead(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	m, err := apikey.NewManager(s, apikey.Config{})
	if err != nil {
		t.Fatal(err)
	}
	k, token, err := m.Create(ctx, apikey.CreateParams{Name: "revoked then deleted"})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := s.Lookup(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if err := m.Delete(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	pool := s.Pool()
	if _, err := pool.Exec(ctx, "CREATE TABLE shadow_keys () INHERITS (apikey_keys)"); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO shadow_keys (id, prefix, name, owner, hash, created_at)
		VALUES ($1, 'ak', 'back from the dead', 'o', $2, now())`, k.ID, rec.Hash); err != nil {
		t.Fatal(err)
	}
	if got, err := m.Verify(ctx, token); err == nil {
		t.Errorf("Verify of a revoked key brought back in a child table: granted %s", got.ID)
	}
	if _, err := s.Lookup(ctx, k.ID); !errors.Is(err, apikey.ErrNotFound) {
		t.Errorf("Lookup of an id only a child table holds: err = %v, want %v", err, apikey.ErrNotFound)
	}
	page, err := m.List(ctx, apikey.KeyFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Keys) != 0 {
		t.Errorf("List shows %d keys from a child table", len(page.Keys))
	}
	if _, err := m.Revoke(ctx, k.ID); !errors.Is(err, apikey.ErrNotFound) {
		t.Errorf("Revoke of an id only a child table holds: err = %v, want %v", err, apikey.ErrNotFound)
	}
	if err := s.CheckIntegrity(ctx); !errors.Is(err, postgres.ErrIntegrity) {
		t.Errorf("CheckIntegrity with a child table: %v", err)
	}
}

// TestLeastPrivilegeRole runs the service as a role that owns nothing and
// holds only what Grant gives it: it migrates (nothing to do), checks,
// creates, verifies, rolls, revokes and deletes keys, but cannot drop,
// disable or replace a trigger, un-revoke, rewrite the audit log, create a
// child table or switch triggers off with session_replication_role.
func TestLeastPrivilegeRole(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	ctx := t.Context()
	owner := openStore(t, dsn, schema)
	if err := owner.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	role := "apikey_test_svc_" + strings.ToLower(rand.Text()[:10])
	if _, err := owner.Pool().Exec(ctx, "CREATE ROLE "+role+" LOGIN"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c := context.Background()
		conn, err := pgx.Connect(c, dsn)
		if err != nil {
			t.Errorf("drop role: %v", err)
			return
		}
		defer conn.Close(c)
		// After the schema is dropped (cleanups run last-in first-out: this
		// one was registered after the schema's).
		for _, q := range []string{"DROP OWNED BY " + role, "DROP ROLE " + role} {
			if _, err := conn.Exec(c, q); err != nil {
				t.Errorf("%s: %v", q, err)
			}
		}
	})
	// Grant refuses whom no grant restricts.
	if err := owner.Grant(ctx, "postgres"); err == nil {
		t.Error("Grant to a superuser succeeded")
	}
	if err := owner.Grant(ctx, "no_such_role_"+role); err == nil || !strings.Contains(err.Error(), "there is no role") {
		t.Errorf("Grant to a missing role: %v", err)
	}
	if err := owner.Grant(ctx, role); err != nil {
		t.Fatalf("Grant: %v", err)
	}

	svc := openStore(t, dsn, schema, func(c *pgxpool.Config) { c.ConnConfig.User = role })
	var who string
	if err := svc.Pool().QueryRow(ctx, "SELECT current_user").Scan(&who); err != nil || who != role {
		t.Fatalf("connected as %q (%v), want %q", who, err, role)
	}
	if err := svc.Migrate(ctx); err != nil {
		t.Fatalf("Migrate as the service role, nothing to apply: %v", err)
	}
	if err := svc.CheckIntegrity(ctx); err != nil {
		t.Fatalf("CheckIntegrity as the service role: %v", err)
	}
	m, err := apikey.NewManager(svc, apikey.Config{UsageFlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	k, token, err := m.Create(ctx, apikey.CreateParams{Name: "least privilege", Owner: "acme"})
	if err != nil {
		t.Fatalf("Create as the service role: %v", err)
	}
	if _, err := m.Verify(ctx, token); err != nil {
		t.Fatalf("Verify as the service role: %v", err)
	}
	if _, err := m.Update(ctx, k.ID, apikey.KeyUpdate{Name: ptr("renamed")}); err != nil {
		t.Fatalf("Update as the service role: %v", err)
	}
	_, token, err = m.Roll(ctx, k.ID, apikey.RollOptions{})
	if err != nil {
		t.Fatalf("Roll as the service role: %v", err)
	}
	if _, err := m.Verify(ctx, token); err != nil {
		t.Fatalf("Verify of the rolled key: %v", err)
	}
	if _, err := m.Revoke(ctx, k.ID); err != nil {
		t.Fatalf("Revoke as the service role: %v", err)
	}
	if _, err := m.Verify(ctx, token); !errors.Is(err, apikey.ErrRevoked) {
		t.Fatalf("Verify after Revoke: %v", err)
	}
	other, _, err := m.Create(ctx, apikey.CreateParams{Name: "deleted"})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Delete(ctx, other.ID); err != nil {
		t.Fatalf("Delete as the service role: %v", err)
	}
	// A caching Manager follows the change feed and registers itself; a
	// strict revocation waits for it.
	cached, err := apikey.NewManager(svc, apikey.Config{Cache: newMapCache(), UsageFlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer cached.Close(context.Background())
	strict, _, err := m.Create(ctx, apikey.CreateParams{Name: "strict"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Revoke(apikey.WithStrict(ctx, true), strict.ID); err != nil {
		t.Fatalf("strict Revoke as the service role: %v", err)
	}
	if err := svc.PruneChanges(ctx, time.Hour); err != nil {
		t.Fatalf("PruneChanges as the service role: %v", err)
	}
	if evs, err := m.Events(ctx, apikey.EventFilter{KeyID: k.ID}); err != nil || len(evs.Events) != 4 {
		t.Fatalf("Events as the service role: %v, %v", evs, err)
	}
	_, leaked, err := m.Create(ctx, apikey.CreateParams{Name: "leaked"})
	if err != nil {
		t.Fatal(err)
	}
	if l, err := m.ReportLeak(ctx, apikey.LeakReport{Token: leaked, URL: "https://example.com/x"}, apikey.LeakPolicy{}); err != nil || l.ID == 0 {
		t.Fatalf("ReportLeak as the service role: %+v, %v", l, err)
	}
	if p, err := m.Leaks(ctx, apikey.LeakFilter{}); err != nil || len(p.Leaks) != 1 {
		t.Fatalf("Leaks as the service role: %+v, %v", p, err)
	}
	closeCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := m.Close(closeCtx); err != nil {
		t.Fatalf("usage flush as the service role: %v", err)
	}

	pool := svc.Pool()
	for _, q := range []string{
		"DROP TRIGGER apikey_keys_guard ON apikey_keys",
		"ALTER TABLE apikey_keys DISABLE TRIGGER apikey_keys_guard",
		"ALTER TABLE apikey_keys DISABLE TRIGGER USER",
		"ALTER TABLE apikey_keys ENABLE TRIGGER apikey_keys_guard",
		"CREATE OR REPLACE FUNCTION apikey_keys_guard() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END; $$",
		"DROP FUNCTION apikey_keys_guard() CASCADE",
		"ALTER TABLE apikey_keys DROP CONSTRAINT apikey_keys_pkey",
		"UPDATE apikey_keys SET revoked_at = NULL WHERE id = '" + k.ID + "'",
		"DELETE FROM apikey_revoked_ids",
		"UPDATE apikey_events SET actor = 'nobody'",
		"DELETE FROM apikey_events",
		"TRUNCATE apikey_events",
		"TRUNCATE apikey_keys",
		"UPDATE apikey_leaks SET url = ''",
		"DELETE FROM apikey_leaks",
		"CREATE TABLE shadow_keys () INHERITS (apikey_keys)",
		"CREATE RULE skip AS ON UPDATE TO apikey_keys DO INSTEAD NOTHING",
		"ALTER TABLE apikey_keys ENABLE ROW LEVEL SECURITY",
		"SET session_replication_role = replica",
		"DROP TABLE apikey_keys",
	} {
		if _, err := pool.Exec(ctx, q); err == nil {
			t.Errorf("the service role could run %q", q)
		}
	}
	if err := owner.CheckIntegrity(ctx); err != nil {
		t.Errorf("CheckIntegrity after the service role's attempts: %v", err)
	}
	if _, err := apikey.NewManager(owner, apikey.Config{}); err != nil {
		t.Fatal(err)
	}
	if rec, err := owner.Lookup(ctx, k.ID); err != nil || rec.RevokedAt == nil {
		t.Errorf("the revoked key after the service role's attempts: %+v, %v", rec, err)
	}
}

func TestGrantStatements(t *testing.T) {
	got := strings.Join(postgres.GrantStatements("app", `svc"x`), ";\n")
	for _, want := range []string{
		`GRANT USAGE ON SCHEMA "app" TO "svc""x"`,
		`GRANT SELECT, INSERT ON TABLE "app"."apikey_events" TO "svc""x"`,
		`GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE "app"."apikey_keys" TO "svc""x"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("GrantStatements lacks %q:\n%s", want, got)
		}
	}
	for _, bad := range []string{"TRUNCATE", "TRIGGER", "ALL", "UPDATE, DELETE ON TABLE \"app\".\"apikey_events\""} {
		if strings.Contains(got, bad) {
			t.Errorf("GrantStatements grants %q:\n%s", bad, got)
		}
	}
}

func ptr[T any](v T) *T { return &v }
