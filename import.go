package apikey

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"
)

// DRFKey is one row of a DRF API Key table (the APIKey model's, or that of
// a model derived from AbstractAPIKey), as an import reads it.
type DRFKey struct {
	// Prefix is the prefix column: the text before the dot of the key.
	Prefix string
	// HashedKey is the hashed_key column: "sha512$$<hex>", or a Django
	// password hasher's digest in keys made before DRF API Key 2.0.
	HashedKey string
	// Name is the name column.
	Name string
	// Created is the created column.
	Created time.Time
	// Revoked is the revoked column.
	Revoked bool
	// ExpiryDate is the expiry_date column; nil means never.
	ExpiryDate *time.Time
	// Owner, Scopes and Metadata become the key's own; DRF API Key has no
	// such columns, but an import may take the owner and metadata from the
	// extra columns of a custom model, and give every key scopes.
	Owner    string
	Scopes   []string
	Metadata map[string]string
}

// NewDRFRecord returns the record under which k is imported, for Import,
// or a *ValidationError naming what cannot be imported. The record's id is
// DRFKeyID(k.Prefix) and its issuer prefix DRFIssuer, so that the key
// verifies in its own form, "<prefix>.<secret>", and only in it. Its
// digest is k.HashedKey unchanged: a sha512$$ digest is kept as it is, and
// a legacy one (pbkdf2_sha256, pbkdf2_sha1, or the algorithm of one of
// Config.LegacyHashers; any other is refused) is replaced by the current
// form on the key's first successful verification. Control characters in
// the name become spaces, and an empty name becomes "DRF API key
// <prefix>"; the owner, scopes and metadata must pass the rules of Create.
// A revoked key is revoked at the Manager's Now (DRF API Key does not
// record when); an expiry date in the past is kept (the key is imported
// expired).
func (m *Manager) NewDRFRecord(k DRFKey) (*Record, error) {
	id, ok := DRFKeyID(k.Prefix)
	if !ok {
		return nil, invalid("prefix", "must be 1 to %d letters and digits", MaxDRFPrefixLength)
	}
	if err := m.checkImportedHash(k.HashedKey); err != nil {
		return nil, err
	}
	if k.Created.IsZero() {
		return nil, invalid("created", "is required")
	}
	if err := CheckTime("created", k.Created); err != nil {
		return nil, err
	}
	now := m.clock()
	rec := &Record{
		Key: Key{
			ID:        id,
			Prefix:    DRFIssuer,
			Name:      drfName(k.Name, k.Prefix),
			Owner:     k.Owner,
			Scopes:    NormalizeScopes(k.Scopes),
			Metadata:  maps.Clone(k.Metadata),
			CreatedAt: k.Created.UTC().Truncate(time.Microsecond),
		},
		Hash: k.HashedKey,
	}
	if rec.Metadata == nil {
		rec.Metadata = map[string]string{}
	}
	if k.ExpiryDate != nil {
		t := k.ExpiryDate.UTC().Truncate(time.Microsecond)
		rec.ExpiresAt = &t
	}
	if k.Revoked {
		rec.RevokedAt = &now
	}
	if err := validate(&rec.Key, now, false); err != nil {
		return nil, err
	}
	return rec, nil
}

// drfName returns name as a valid key name: control characters replaced
// by spaces, surrounding spaces trimmed, and "DRF API key <prefix>" when
// nothing is left.
func drfName(name, prefix string) string {
	name = strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(name, "\uFFFD")))
	if name == "" {
		return "DRF API key " + prefix
	}
	return name
}

// checkImportedHash checks that the Manager can verify keys with the
// digest stored: DRF API Key's sha512$$ with 128 hex digits, or the
// format of a legacy hasher.
func (m *Manager) checkImportedHash(stored string) error {
	if strings.HasPrefix(stored, tagSHA512) {
		var d [64]byte
		if !decodeHex(d[:], stored[len(tagSHA512):]) {
			return invalid("hashed_key", "a sha512$$ digest must have 128 hex digits")
		}
		return nil
	}
	if m.hasher.legacy.lookup(stored) == nil {
		alg, _, _ := strings.Cut(stored, "$")
		if len(alg) > 40 {
			alg = alg[:40] + "…"
		}
		return invalid("hashed_key", "algorithm %q is neither sha512 nor that of a configured legacy hasher (Config.LegacyHashers)", alg)
	}
	return nil
}

// ErrNoImport reports a store that does not implement Importer.
var ErrNoImport = errors.New("apikey: the store cannot import keys (it is not an apikey.Importer)")

// Import stores keys made by NewDRFRecord, in one transaction of the
// store, which must implement Importer (else ErrNoImport). It reports,
// for each record, whether it was imported: a record whose id is already
// taken, by a key, a revoked key's tombstone or an audit entry, is skipped,
// so that an import that runs again imports nothing twice, and never
// changes or revives a key. Each key imported gets an audit entry
// key.imported; a revoked one is revoked in the same transaction, as
// Revoke does (an audit entry key.revoked, a tombstone), so that it is
// never usable, not even for an instant. Records that NewDRFRecord would
// not make are refused with a *ValidationError before anything is stored.
// Like Create, Import publishes nothing itself: other processes learn of
// the new keys (an id presented to them just before its import may be
// cached as unknown) from the store's ChangeFeed.
//
// A record keeps the lifecycle fields a caller sets on it after
// NewDRFRecord (DisabledAt, LastUsedAt, Environment, AllowedCIDRs,
// InactivityExpiry, RateLimits, Credits), each checked as Create checks it
// (AllowedCIDRs must be in the form of NormalizeCIDRs). A previous secret
// (PreviousSecret or PreviousHash) is refused, with a *ValidationError for
// "previous_secret": it is a second credential of the key, which only Roll
// makes, with a window that Roll starts; the systems keys are imported
// from have no such thing (DRF API Key keys have one secret), and a
// window copied from elsewhere would keep an old secret alive on rules
// this Manager never applied. Roll the key after the import instead; the
// stores refuse such a record too (see Importer).
func (m *Manager) Import(ctx context.Context, recs []*Record) ([]bool, error) {
	imp, ok := m.store.(Importer)
	if !ok {
		return nil, ErrNoImport
	}
	now := m.clock()
	batch := make([]ImportEntry, len(recs))
	for i, rec := range recs {
		if err := m.checkImported(rec, now); err != nil {
			return nil, fmt.Errorf("record %d (%s): %w", i, rec.ID, err)
		}
		batch[i] = ImportEntry{Record: rec, Imported: m.event(ctx, EventImported, rec.ID, now)}
		if rec.RevokedAt != nil {
			batch[i].Revoked = m.event(ctx, EventRevoked, rec.ID, *rec.RevokedAt)
		}
	}
	if err := imp.Import(ctx, batch); err != nil {
		return nil, m.storeErr("import", err)
	}
	done := make([]bool, len(recs))
	for i, e := range batch {
		if e.Imported.ID == 0 {
			continue
		}
		done[i] = true
		m.Invalidate(e.Record.ID)
		m.emit(e.Imported)
		if e.Revoked != nil {
			m.emit(e.Revoked)
		}
	}
	return done, nil
}

// checkImported checks that rec is a record NewDRFRecord could have made.
func (m *Manager) checkImported(rec *Record, now time.Time) error {
	if rec == nil {
		return invalid("record", "is nil")
	}
	if _, ok := drfPrefixOf(rec.ID); !ok || rec.Prefix != DRFIssuer {
		return invalid("id", "not the id and prefix of an imported key (NewDRFRecord)")
	}
	if err := m.checkImportedHash(rec.Hash); err != nil {
		return err
	}
	if err := CheckTime("created", rec.CreatedAt); err != nil {
		return err
	}
	for _, t := range []struct {
		field string
		at    *time.Time
	}{{"revoked_at", rec.RevokedAt}, {"disabled_at", rec.DisabledAt}, {"last_used_at", rec.LastUsedAt}} {
		if t.at != nil {
			if err := CheckTime(t.field, *t.at); err != nil {
				return err
			}
		}
	}
	if rec.PreviousSecret != nil || rec.PreviousHash != "" {
		return invalid("previous_secret", "an imported key has one secret: roll it after the import for another")
	}
	if _, err := ParseEnvironment(string(rec.Environment)); err != nil {
		return err
	}
	if len(rec.AllowedCIDRs) > 0 {
		n, err := NormalizeCIDRs(rec.AllowedCIDRs)
		if err != nil {
			return err
		}
		if !slices.Equal(n, rec.AllowedCIDRs) {
			return invalid("allowed_cidrs", "must be in normalised form (NormalizeCIDRs)")
		}
	}
	if err := checkInactivity(time.Duration(rec.InactivityExpiry)); err != nil {
		return err
	}
	if err := CheckRateLimits(rec.RateLimits); err != nil {
		return err
	}
	if err := CheckCredits(rec.Credits); err != nil {
		return err
	}
	return validate(&rec.Key, now, false)
}
