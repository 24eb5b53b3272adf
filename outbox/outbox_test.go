package outbox_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/outbox"
)

func TestCheckURL(t *testing.T) {
	for _, c := range []struct {
		url, reason string
	}{
		{"https://hooks.example.com/apikey?x=1", ""},
		{"http://127.0.0.1:8080/", ""},
		{"", "must not be empty"},
		{"ftp://example.com", "must be an http or https URL"},
		{"javascript:alert(1)", "must be an http or https URL"},
		{"/relative", "must be an http or https URL"},
		{"https://", "must name a host"},
		{"https://user:pw@example.com/", "must not hold credentials"},
		{"https://example.com/#frag", "must not have a fragment"},
		{"https://example.com/" + strings.Repeat("a", 2000), "must be at most 2000 bytes"},
		{"http://[::1", "not a URL"},
	} {
		err := outbox.CheckURL(c.url)
		var ve *apikey.ValidationError
		switch {
		case c.reason == "" && err != nil:
			t.Errorf("CheckURL(%q) = %v, want nil", c.url, err)
		case c.reason != "" && (!errors.As(err, &ve) || ve.Field != "url" || ve.Reason != c.reason):
			t.Errorf("CheckURL(%q) = %v, want url: %s", c.url, err, c.reason)
		}
	}
}

func TestCheckEvents(t *testing.T) {
	for _, all := range [][]apikey.EventType{nil, {}, {"*"}} {
		if got, err := outbox.CheckEvents(all); err != nil || len(got) != 0 || got == nil {
			t.Errorf("CheckEvents(%q) = %q, %v; want every event (empty)", all, got, err)
		}
	}
	got, err := outbox.CheckEvents([]apikey.EventType{apikey.EventRevoked, apikey.EventCreated, apikey.EventRevoked})
	if err != nil || len(got) != 2 || got[0] != apikey.EventRevoked {
		t.Errorf("duplicates: %q, %v", got, err)
	}
	for _, bad := range []apikey.EventType{"key.bogus", apikey.EventWebhookCreated, apikey.EventVerifyRejected, "*"} {
		events := []apikey.EventType{apikey.EventCreated, bad}
		var ve *apikey.ValidationError
		if _, err := outbox.CheckEvents(events); !errors.As(err, &ve) || ve.Field != "events" || !strings.Contains(ve.Reason, string(bad)) {
			t.Errorf("CheckEvents(%q) = %v", events, err)
		}
	}
	for _, e := range outbox.EventTypes() {
		if strings.HasPrefix(string(e), "webhook.") {
			t.Errorf("EventTypes lists %s", e)
		}
	}
}

func TestCursor(t *testing.T) {
	c := outbox.Cursor(&outbox.Delivery{Seq: 12345})
	if seq, err := outbox.ParseCursor(c); err != nil || seq != 12345 {
		t.Errorf("ParseCursor(Cursor) = %d, %v", seq, err)
	}
	for _, bad := range []string{"", "!!", "AAAAAAAAAAA", outbox.Cursor(&outbox.Delivery{Seq: 0})} {
		if _, err := outbox.ParseCursor(bad); err == nil {
			t.Errorf("ParseCursor(%q) accepted", bad)
		}
	}
}

func TestDiffHidesSecret(t *testing.T) {
	before := &outbox.Endpoint{URL: "https://a.example", Secret: "whsec_old", Enabled: true}
	after := *before
	after.Secret, after.Enabled = "whsec_new", false
	d := outbox.Diff(before, &after)
	if d["secret"].After != "rotated" || d["secret"].Before != nil || d["enabled"].After != false || len(d) != 2 {
		t.Errorf("Diff = %+v", d)
	}
	for _, c := range outbox.Diff(nil, &after) {
		if s, ok := c.After.(string); ok && strings.HasPrefix(s, "whsec_") {
			t.Errorf("Diff of a creation shows the secret")
		}
	}
}
