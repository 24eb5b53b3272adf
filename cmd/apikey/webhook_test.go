package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestWebhookCLI runs every webhook subcommand in process on SQLite.
func TestWebhookCLI(t *testing.T) {
	e := newEnv(t)
	r := e.run("webhook", "create", "ftp://example.com")
	if r.code != 1 || !strings.Contains(r.stderr, "invalid url: must be an http or https URL") {
		t.Errorf("bad URL: exit %d, %q", r.code, r.stderr)
	}
	r = e.run("webhook", "create", "https://example.com", "--event", "key.bogus")
	if r.code != 1 || !strings.Contains(r.stderr, `unknown event type "key.bogus"`) {
		t.Errorf("bad event: exit %d, %q", r.code, r.stderr)
	}
	r = e.run("webhook", "create", "https://example.com/hooks", "--event", "key.created,key.revoked", "--json")
	if r.code != 0 {
		t.Fatalf("create: exit %d, %q", r.code, r.stderr)
	}
	var ep struct {
		ID, URL, Secret string
		Events          []string
		Enabled         bool
	}
	if err := json.Unmarshal([]byte(r.stdout), &ep); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ep.Secret, "whsec_") || len(ep.Events) != 2 || !ep.Enabled {
		t.Errorf("create --json: %s", r.stdout)
	}
	r = e.run("webhook", "create", "https://example.com/all")
	if r.code != 0 || !strings.Contains(r.stdout, "secret:") || !strings.Contains(r.stderr, "not shown again") || !strings.Contains(r.stdout, "* (all)") {
		t.Errorf("create: %q %q", r.stdout, r.stderr)
	}
	r = e.run("webhook", "list")
	if r.code != 0 || strings.Count(r.stdout, "wh_") != 2 || strings.Contains(r.stdout, "whsec_") {
		t.Errorf("list: %q", r.stdout)
	}
	r = e.run("webhook", "show", ep.ID, "--json")
	if r.code != 0 || strings.Contains(r.stdout, "whsec_") || !strings.Contains(r.stdout, ep.URL) {
		t.Errorf("show: %q", r.stdout)
	}
	r = e.run("webhook", "show", "wh_AAAAAAAAAAAAAAAAAAAAAA")
	want(t, r, 1, "", "apikey: no webhook endpoint has the id \"wh_AAAAAAAAAAAAAAAAAAAAAA\"\n")
	r = e.run("webhook", "update", ep.ID)
	if r.code != 2 || !strings.Contains(r.stderr, "changes nothing") {
		t.Errorf("empty update: %d %q", r.code, r.stderr)
	}
	r = e.run("webhook", "update", ep.ID, "--disable", "--rotate-secret", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"enabled": false`) || !strings.Contains(r.stdout, "whsec_") || strings.Contains(r.stdout, ep.Secret) {
		t.Errorf("update: %q %q", r.stdout, r.stderr)
	}
	r = e.run("webhook", "update", ep.ID, "--enable", "--all-events")
	if r.code != 0 || !strings.Contains(r.stdout, "* (all)") || strings.Contains(r.stdout, "secret") {
		t.Errorf("update: %q %q", r.stdout, r.stderr)
	}

	_, id := e.create("--name", "billing")
	r = e.run("webhook", "deliveries", ep.ID, "--json")
	var page struct {
		Deliveries []struct{ ID, Type, State string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &page); err != nil || len(page.Deliveries) != 1 || page.Deliveries[0].Type != "key.created" {
		t.Fatalf("deliveries: %q %v", r.stdout, err)
	}
	d := page.Deliveries[0].ID
	r = e.run("webhook", "deliveries", ep.ID)
	if r.code != 0 || !strings.Contains(r.stdout, d) || !strings.Contains(r.stdout, "pending") {
		t.Errorf("deliveries: %q", r.stdout)
	}
	r = e.run("webhook", "deliveries", ep.ID, d)
	if r.code != 0 || !strings.Contains(r.stdout, "key.created") {
		t.Errorf("delivery: %q", r.stdout)
	}
	r = e.run("webhook", "deliveries", ep.ID, "--state", "lost")
	if r.code != 1 || !strings.Contains(r.stderr, "invalid state") {
		t.Errorf("bad state: %d %q", r.code, r.stderr)
	}
	r = e.run("webhook", "resend", ep.ID, d, "--json")
	if r.code != 0 || !strings.Contains(r.stdout, d) {
		t.Errorf("resend: %q %q", r.stdout, r.stderr)
	}
	r = e.run("webhook", "resend", ep.ID, "msg_00000000000000000000000000000000")
	if r.code != 1 || !strings.Contains(r.stderr, "has no delivery") {
		t.Errorf("resend unknown: %d %q", r.code, r.stderr)
	}
	r = e.run("events", "--json")
	if !strings.Contains(r.stdout, "webhook.created") || strings.Contains(r.stdout, "whsec_") {
		t.Errorf("events: the webhook entries are missing or show a secret")
	}
	r = e.run("webhook", "delete", ep.ID)
	if r.code != 0 {
		t.Errorf("delete: %d %q", r.code, r.stderr)
	}
	r = e.run("webhook", "delete", ep.ID)
	if r.code != 1 {
		t.Errorf("second delete: %d %q", r.code, r.stderr)
	}
	_ = id
}
