package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyclient"
)

// clientMethods maps every operation of openapi.json, "METHOD /path", to
// the apikeyclient.Client method that calls it, or to "-" and the reason
// it has none. Add a row with each new route: TestClientCoversAPI fails
// until the document and this table agree.
var clientMethods = map[string]string{
	"POST /v1/keys":                                       "Create",
	"GET /v1/keys":                                        "List",
	"GET /v1/keys/{id}":                                   "Get",
	"PATCH /v1/keys/{id}":                                 "Update",
	"DELETE /v1/keys/{id}":                                "Delete",
	"POST /v1/keys/{id}/revoke":                           "Revoke",
	"POST /v1/keys/{id}/roll":                             "Roll",
	"POST /v1/keys/{id}/disable":                          "Disable",
	"POST /v1/keys/{id}/enable":                           "Enable",
	"GET /v1/keys/{id}/usage":                             "Usage",
	"GET /v1/events":                                      "Events",
	"POST /v1/verify":                                     "Verify",
	"GET /v1/whoami":                                      "Whoami",
	"GET /v1/openapi.json":                                "OpenAPI",
	"GET /healthz":                                        "Health",
	"GET /readyz":                                         "Ready",
	"GET /v1/owners/{owner}":                              "Owner",
	"PATCH /v1/owners/{owner}":                            "SetOwner",
	"PUT /v1/owners/{owner}":                              "ReplaceOwner",
	"DELETE /v1/owners/{owner}":                           "DeleteOwner",
	"POST /v1/keys/{id}/credits":                          "AdjustCredits",
	"POST /v1/owners/{owner}/credits":                     "AdjustCredits",
	"POST /v1/webhooks":                                   "CreateWebhook",
	"GET /v1/webhooks":                                    "Webhooks",
	"GET /v1/webhooks/{id}":                               "Webhook",
	"PATCH /v1/webhooks/{id}":                             "UpdateWebhook",
	"DELETE /v1/webhooks/{id}":                            "DeleteWebhook",
	"GET /v1/webhooks/{id}/deliveries":                    "Deliveries",
	"GET /v1/webhooks/{id}/deliveries/{delivery}":         "Delivery",
	"POST /v1/webhooks/{id}/deliveries/{delivery}/resend": "ResendDelivery",
	"POST /v1/leaks":                                      "- called by GitHub's secret scanning, signed with GitHub's keys",
	"GET /metrics":                                        "- Prometheus text, scraped by Prometheus",
}

// TestClientCoversAPI walks the paths and methods of openapi.json and
// checks that each has a Client method (or a stated reason for none), and
// that the table names no operation the document lacks.
func TestClientCoversAPI(t *testing.T) {
	data, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	methods := map[string]bool{"get": true, "post": true, "put": true, "patch": true, "delete": true, "head": true, "options": true}
	seen := map[string]bool{}
	client := reflect.TypeOf(&apikeyclient.Client{})
	var missing []string
	for path, ops := range doc.Paths {
		for m := range ops {
			if !methods[m] {
				continue // parameters, summary...
			}
			op := strings.ToUpper(m) + " " + path
			seen[op] = true
			name, ok := clientMethods[op]
			switch {
			case !ok:
				missing = append(missing, op)
			case strings.HasPrefix(name, "- "):
				// no method, for the reason given
			default:
				if _, ok := client.MethodByName(name); !ok {
					t.Errorf("%s: apikeyclient.Client has no method %s", op, name)
				}
			}
		}
	}
	sort.Strings(missing)
	for _, op := range missing {
		t.Errorf("%s is in openapi.json but not in clientMethods: add the apikeyclient method that calls it", op)
	}
	for op := range clientMethods {
		if !seen[op] {
			t.Errorf("clientMethods lists %s, which openapi.json does not describe", op)
		}
	}
}

// TestClientActivity drives the methods added for the whole API against
// the real service: Events, Usage, Health, Ready and OpenAPI.
func TestClientActivity(t *testing.T) {
	s := newService(t)
	c := s.client(t, s.admin)
	ctx := context.Background()
	k, token, err := c.Create(ctx, apikey.CreateParams{Name: "watched"})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := c.Verify(ctx, token); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.m.FlushUsage(ctx); err != nil {
		t.Fatal(err)
	}
	now := s.clock.Now()
	counts, err := c.Usage(ctx, k.ID, now.Add(-24*time.Hour), now.Add(time.Minute), apikey.ByDay)
	if err != nil {
		t.Fatal(err)
	}
	var valid int64
	for _, u := range counts {
		if u.Outcome == "valid" {
			valid += u.Count
		}
	}
	if valid != 2 {
		t.Errorf("Usage: %+v, want 2 valid", counts)
	}
	if _, err := c.Usage(ctx, k.ID, now, now.Add(-time.Hour), ""); !errors.Is(err, apikey.ErrInvalidInput) {
		t.Errorf("Usage with from after to: %v, want ErrInvalidInput", err)
	}
	if _, err := c.Usage(ctx, "AAAAAAAAAAAA", time.Time{}, time.Time{}, ""); !errors.Is(err, apikey.ErrNotFound) {
		t.Errorf("Usage of an unknown key: %v, want ErrNotFound", err)
	}
	page, err := c.Events(ctx, apikey.EventFilter{KeyID: k.ID})
	if err != nil || len(page.Events) != 1 || page.Events[0].Type != apikey.EventCreated {
		t.Errorf("Events: %+v, %v", page, err)
	}
	if _, err := c.Events(ctx, apikey.EventFilter{Type: "nope"}); !errors.Is(err, apikey.ErrInvalidInput) {
		t.Errorf("Events of an unknown type: %v, want ErrInvalidInput", err)
	}
	if err := c.Health(ctx); err != nil {
		t.Errorf("Health: %v", err)
	}
	if err := c.Ready(ctx); err != nil {
		t.Errorf("Ready: %v", err)
	}
	doc, err := c.OpenAPI(ctx)
	if err != nil || !strings.Contains(string(doc), `"openapi"`) {
		t.Errorf("OpenAPI: %.60s, %v", doc, err)
	}
	// A key without apikey:admin may not read the audit log.
	if _, err := s.client(t, s.verify).Events(ctx, apikey.EventFilter{}); err == nil {
		t.Error("Events with a verify-only key succeeded")
	}
}
