package main

import (
	"strings"
	"testing"
)

// TestServeNetEnv runs the real binary on port 0 with --environment live:
// a test key is refused 403 wrong_environment on every route (and
// answered wrong_environment by POST /v1/verify), and a key with a network
// allowlist is refused from 127.0.0.1 while its ranges leave it out, and
// accepted once they hold it. Then, with 127.0.0.1 as a trusted proxy, the
// client is the X-Forwarded-For entry.
func TestServeNetEnv(t *testing.T) {
	dir := t.TempDir()
	env := []string{"APIKEY_DB=" + databaseFor(t, "sqlite")}
	mk := func(args ...string) string {
		r := execute(t, dir, "", env, append([]string{"create"}, args...)...)
		if r.code != 0 {
			t.Fatalf("create %q: %+v", args, r)
		}
		return strings.TrimSpace(r.stdout)
	}
	admin := mk("--name", "admin", "--scope", "apikey:admin")
	testAdmin := mk("--name", "test admin", "--scope", "apikey:admin", "--environment", "test")
	fenced := mk("--name", "fenced", "--scope", "apikey:admin", "--allow-cidr", "10.0.0.0/8", "--allow-cidr", "2001:db8::/32")
	s := startServe(t, dir, env, "--environment", "live")
	u := s.url

	expect(t, "live key", call(t, "GET", u+"/v1/whoami", "api-key", admin, ""), 200, "")
	expect(t, "test key", call(t, "GET", u+"/v1/whoami", "api-key", testAdmin, ""), 403, "wrong_environment")
	v := call(t, "POST", u+"/v1/verify", "api-key", admin, `{"key":"`+testAdmin+`"}`)
	expect(t, "verify test key", v, 200, "")
	if v.body["valid"] != false || v.body["code"] != "wrong_environment" {
		t.Errorf("verify test key: %s", v.raw)
	}
	expect(t, "fenced key from 127.0.0.1", call(t, "GET", u+"/v1/whoami", "api-key", fenced, ""), 403, "ip_not_allowed")
	// Without trusted proxies the header is not believed.
	r := callXFF(t, u+"/v1/whoami", fenced, "10.1.2.3")
	expect(t, "fenced key with a forged header", r, 403, "ip_not_allowed")

	// Allow 127.0.0.1 through the API: the key then works from here.
	id := strings.Split(fenced, "_")[1]
	p := call(t, "PATCH", u+"/v1/keys/"+id, "api-key", admin, `{"allowed_cidrs":["10.0.0.0/8","2001:db8::/32","127.0.0.1"]}`)
	expect(t, "allow 127.0.0.1", p, 200, "")
	expect(t, "fenced key allowed", call(t, "GET", u+"/v1/whoami", "api-key", fenced, ""), 200, "")
	v = call(t, "POST", u+"/v1/verify", "api-key", admin, `{"key":"`+fenced+`","client_ip":"192.0.2.1"}`)
	if v.body["valid"] != false || v.body["code"] != "ip_not_allowed" {
		t.Errorf("verify from 192.0.2.1: %s", v.raw)
	}
	s.stop(t)

	// Behind a trusted proxy (127.0.0.1), the client is the header's.
	s = startServe(t, dir, env, "--trusted-proxies", "127.0.0.1/32")
	u = s.url
	expect(t, "no header: the proxy itself", call(t, "GET", u+"/v1/whoami", "api-key", fenced, ""), 200, "")
	expect(t, "client in 10/8", callXFF(t, u+"/v1/whoami", fenced, "10.9.9.9"), 200, "")
	expect(t, "client outside", callXFF(t, u+"/v1/whoami", fenced, "192.0.2.9"), 403, "ip_not_allowed")
	expect(t, "spoofed left entry", callXFF(t, u+"/v1/whoami", fenced, "10.9.9.9, 192.0.2.9"), 403, "ip_not_allowed")
	expect(t, "IPv6 client", callXFF(t, u+"/v1/whoami", fenced, "2001:db8::9"), 200, "")
	expect(t, "malformed header", callXFF(t, u+"/v1/whoami", fenced, "10.9.9.9, nonsense"), 400, "bad_forwarded_for")
	// Without --environment, test keys are accepted.
	expect(t, "test key, both environments", call(t, "GET", u+"/v1/whoami", "api-key", testAdmin, ""), 200, "")
	s.stop(t)
}
