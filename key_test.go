package apikey_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
)

func TestKeyStateAt(t *testing.T) {
	noon := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	revokedAt := noon.Add(-time.Hour)
	tests := []struct {
		name    string
		expires *time.Time
		revoked *time.Time
		now     time.Time
		want    apikey.State
	}{
		{"no expiry", nil, nil, noon, apikey.StateActive},
		{"one nanosecond before expiry", &noon, nil, noon.Add(-time.Nanosecond), apikey.StateActive},
		{"exactly at expiry", &noon, nil, noon, apikey.StateExpired},
		{"after expiry", &noon, nil, noon.Add(time.Second), apikey.StateExpired},
		{"same instant in another zone", &noon, nil, noon.In(time.FixedZone("X", 3600)), apikey.StateExpired},
		{"revoked", nil, &revokedAt, noon, apikey.StateRevoked},
		{"revoked and expired", &noon, &revokedAt, noon.Add(time.Hour), apikey.StateRevoked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := &apikey.Key{ExpiresAt: tt.expires, RevokedAt: tt.revoked}
			if got := k.StateAt(tt.now); got != tt.want {
				t.Errorf("StateAt(%v) = %q, want %q", tt.now, got, tt.want)
			}
			if got, want := k.Expired(tt.now), tt.expires != nil && !tt.now.Before(*tt.expires); got != want {
				t.Errorf("Expired(%v) = %v, want %v", tt.now, got, want)
			}
		})
	}
}

func TestHasScope(t *testing.T) {
	tests := []struct {
		granted  []string
		required string
		want     bool
	}{
		{[]string{"billing:read"}, "billing:read", true},
		{[]string{"billing:read"}, "billing:write", false},
		{[]string{"billing:*"}, "billing:write", true},
		{[]string{"billing:*"}, "billing:invoices:write", true},
		{[]string{"billing:*"}, "billing", false},
		{[]string{"billing:*"}, "billing:", false},
		{[]string{"billing:*"}, "billingx:read", false},
		{[]string{"*"}, "anything:at:all", true},
		{nil, "billing:read", false},
		{[]string{"bill*"}, "billing", false},
	}
	for _, tt := range tests {
		k := &apikey.Key{Scopes: tt.granted}
		if got := k.HasScope(tt.required); got != tt.want {
			t.Errorf("Key{Scopes: %q}.HasScope(%q) = %v, want %v", tt.granted, tt.required, got, tt.want)
		}
	}
}

func TestValidScope(t *testing.T) {
	for _, s := range []string{"read", "billing:read", "billing:*", "*", "a.b_c-d/e", strings.Repeat("a", 100)} {
		if !apikey.ValidScope(s) {
			t.Errorf("ValidScope(%q) = false, want true", s)
		}
	}
	for _, s := range []string{"", ":*", "bill*", "a b", "a\nb", "é", strings.Repeat("a", 101), "**"} {
		if apikey.ValidScope(s) {
			t.Errorf("ValidScope(%q) = true, want false", s)
		}
	}
}

func TestKeyJSON(t *testing.T) {
	created := time.Date(2026, 11, 23, 12, 0, 0, 123000, time.UTC)
	k := apikey.Key{ID: testID, Prefix: "ak", Name: "n", Scopes: []string{"a"}, Metadata: map[string]string{"k": "v"},
		CreatedAt: created, ExpiresAt: &created, State: apikey.StateActive}
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{`"id":"AbC123xyz789"`, `"created_at":"2026-11-23T12:00:00.000123Z"`, `"expires_at":`, `"state":"active"`, `"metadata":{"k":"v"}`} {
		if !strings.Contains(got, want) {
			t.Errorf("json = %s, want it to contain %s", got, want)
		}
	}
	for _, absent := range []string{"revoked_at", "last_used_at", "hash", "Hash"} {
		if strings.Contains(got, absent) {
			t.Errorf("json = %s, want no %s", got, absent)
		}
	}
}

func TestKeyClone(t *testing.T) {
	at := time.Now()
	k := &apikey.Key{Scopes: []string{"a"}, Metadata: map[string]string{"k": "v"}, ExpiresAt: &at}
	c := k.Clone()
	c.Scopes[0] = "b"
	c.Metadata["k"] = "w"
	*c.ExpiresAt = at.Add(time.Hour)
	if k.Scopes[0] != "a" || k.Metadata["k"] != "v" || !k.ExpiresAt.Equal(at) {
		t.Errorf("modifying a clone changed the original: %+v", k)
	}
}

func TestKeyJSONEmptyCollections(t *testing.T) {
	created := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for _, k := range []any{apikey.Key{ID: testID, CreatedAt: created}, &apikey.Key{ID: testID, CreatedAt: created}} {
		b, err := json.Marshal(k)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(b); !strings.Contains(got, `"scopes":[]`) || !strings.Contains(got, `"metadata":{}`) || strings.Contains(got, "null") {
			t.Errorf("json of %T = %s, want scopes [] and metadata {}", k, got)
		}
	}
	// A Record encodes as its key: the digest never appears.
	rec := apikey.Record{Key: apikey.Key{ID: testID, CreatedAt: created}, Hash: "sha256$abcdef"}
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); strings.Contains(got, "abcdef") || !strings.Contains(got, `"id":"AbC123xyz789"`) {
		t.Errorf("json of a Record = %s, want the key without its hash", got)
	}
}

func TestIssuedKeyJSON(t *testing.T) {
	created := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	k := &apikey.Key{ID: testID, Prefix: "ak", Name: "n", CreatedAt: created, State: apikey.StateActive}
	b, err := json.Marshal(apikey.IssuedKey{Token: "ak_token", Key: k})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"key":"ak_token","id":"AbC123xyz789","prefix":"ak","name":"n","owner":"","scopes":[],"metadata":{},"created_at":"2026-11-23T12:00:00Z","ratelimits":[],"environment":"live","allowed_cidrs":[],"state":"active"}`
	if string(b) != want {
		t.Errorf("json = %s\nwant   %s", b, want)
	}
	var back apikey.IssuedKey
	if err := json.Unmarshal(b, &back); err != nil || back.Token != "ak_token" || back.Key == nil || back.ID != testID || !back.CreatedAt.Equal(created) {
		t.Errorf("decoding %s = %+v, %v", b, back, err)
	}
}

func TestStates(t *testing.T) {
	want := []apikey.State{apikey.StateActive, apikey.StateDisabled, apikey.StateExpired, apikey.StateRevoked}
	if got := apikey.States(); !slices.Equal(got, want) {
		t.Errorf("States() = %q, want %q", got, want)
	}
	apikey.States()[0] = "changed"
	if got := apikey.States(); !slices.Equal(got, want) {
		t.Errorf("States() after a caller changed its copy = %q, want %q", got, want)
	}
	for _, s := range want {
		if !s.Valid() {
			t.Errorf("%q.Valid() = false", s)
		}
	}
	for _, s := range []apikey.State{"", "Active", "deleted"} {
		if s.Valid() {
			t.Errorf("%q.Valid() = true", s)
		}
	}
}
