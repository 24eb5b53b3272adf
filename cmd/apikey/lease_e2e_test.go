package main

import (
	"encoding/json"
	"testing"
)

// TestServeGivesBackLeases: apikey serve leases credits (--credit-lease,
// default 100), so that the database shows less than what is left while
// it runs, every answer still counting down exactly; on stop (SIGTERM) it
// gives back what it held, and the database holds the balance less the
// spends. With --credit-lease 0 every spend is in the database at once.
func TestServeGivesBackLeases(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := []string{"APIKEY_DB=" + databaseFor(t, "sqlite")}
	admin := adminToken(t, dir, env)
	stored := func(id string) int64 {
		t.Helper()
		r := e2eRun(t, dir, env, "show", id, "--json")
		if r.code != 0 {
			t.Fatalf("show: %d %s", r.code, r.stderr)
		}
		var v struct {
			Credits struct {
				Remaining int64 `json:"remaining"`
			} `json:"credits"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
			t.Fatalf("show --json: %v: %s", err, r.stdout)
		}
		return v.Credits.Remaining
	}
	for _, tc := range []struct {
		args   []string
		leased bool
	}{{nil, true}, {[]string{"--credit-lease", "0"}, false}} {
		s := startServe(t, dir, env, tc.args...)
		c := call(t, "POST", s.url+"/v1/keys", "api-key", admin, `{"name":"metered","credits":{"remaining":1000}}`)
		expect(t, "create", c, 201, "")
		token, id := c.str("key"), c.str("id")
		for i := int64(1); i <= 10; i++ {
			c = call(t, "POST", s.url+"/v1/verify", "api-key", admin, `{"key":"`+token+`","credits":1}`)
			expect(t, "verify", c, 200, "")
			credits, _ := c.body["credits"].(map[string]any)
			if got := credits["remaining"]; got != float64(1000-i) {
				t.Fatalf("%v: spend %d: remaining %v, want %d", tc.args, i, got, 1000-i)
			}
		}
		switch b := stored(id); {
		case tc.leased && b >= 990:
			t.Errorf("%v: the database holds %d while serving: nothing leased", tc.args, b)
		case !tc.leased && b != 990:
			t.Errorf("%v: the database holds %d, want 990: no leases", tc.args, b)
		}
		s.stop(t)
		if b := stored(id); b != 990 {
			t.Errorf("%v: the database holds %d after the stop, want 990: the lease given back", tc.args, b)
		}
	}
}
