package main

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/go-apikey/apikey/apikeytest"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

func TestTracingEnabled(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		vars    map[string]string
		enabled bool
		err     string
	}{
		{nil, false, ""},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true, ""},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, true, ""},
		{map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true, ""},
		{map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, false, ""},
		{map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, false, ""},
		{map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, false, ""}, // not asked for: not checked
		{map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, true,
			"OTEL_TRACES_EXPORTER=zipkin is not supported: apikey exports traces with otlp (or none)"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, true,
			"OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported: apikey exports traces over http/protobuf"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
			"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}, true, ""},
	} {
		getenv := func(name string) string { return tc.vars[name] }
		if got := tracingEnabled(getenv); got != tc.enabled {
			t.Errorf("%v: enabled %v, want %v", tc.vars, got, tc.enabled)
		}
		err := checkTracingEnv(getenv)
		if got := ""; err != nil || tc.err != "" {
			if err != nil {
				got = err.Error()
			}
			if got != tc.err {
				t.Errorf("%v: error %q, want %q", tc.vars, got, tc.err)
			}
		}
	}

	// An unsupported exporter stops serve before the database is touched.
	e := newEnv(t)
	e.vars["OTEL_TRACES_EXPORTER"] = "zipkin"
	want(t, e.run("serve", "--addr", "127.0.0.1:0"), 2, "",
		"apikey: OTEL_TRACES_EXPORTER=zipkin is not supported: apikey exports traces with otlp (or none)\n")
}

// collector is an OTLP/HTTP trace receiver on loopback that keeps what it
// is sent.
type collector struct {
	mu       sync.Mutex
	bodies   [][]byte
	requests []*coltracepb.ExportTraceServiceRequest
	errs     []string
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
		c.errs = append(c.errs, r.Method+" "+r.URL.Path)
		http.NotFound(w, r)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			c.errs = append(c.errs, err.Error())
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	req := &coltracepb.ExportTraceServiceRequest{}
	if err == nil {
		err = proto.Unmarshal(b, req)
	}
	if err != nil {
		c.errs = append(c.errs, err.Error())
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.bodies = append(c.bodies, b)
	c.requests = append(c.requests, req)
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

// TestServeTracing runs the binary with OTEL_EXPORTER_OTLP_ENDPOINT set to
// a collector on loopback, makes a few requests, stops it and checks that
// the spans arrived, with the outcomes, the service name and no secret.
func TestServeTracing(t *testing.T) {
	t.Parallel()
	c := &collector{}
	ts := httptest.NewServer(c) // 127.0.0.1
	defer ts.Close()

	dir := t.TempDir()
	env := []string{"APIKEY_DB=sqlite:" + filepath.Join(dir, "apikey.db")}
	r := execute(t, dir, "", env, "create", "--name", "demo")
	if r.code != 0 {
		t.Fatalf("create: %+v", r)
	}
	demo := strings.TrimSpace(r.stdout)
	wrong := apikeytest.WrongSecret(demo)

	env = append(env, "OTEL_EXPORTER_OTLP_ENDPOINT="+ts.URL, "OTEL_SERVICE_NAME=apikey-test",
		"OTEL_TRACES_EXPORTER=", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=", "OTEL_SDK_DISABLED=")
	s := startServe(t, dir, env)
	for range 3 {
		expect(t, "whoami", call(t, "GET", s.url+"/v1/whoami", "api-key", demo, ""), 200, "")
	}
	// Owners and credits work with tracing on, though the traced store
	// offers apikey.Store's methods only.
	admin := adminToken(t, dir, env)
	expect(t, "put owner", call(t, "PUT", s.url+"/v1/owners/acme", "api-key", admin, `{"credits":{"remaining":50}}`), 200, "")
	m := call(t, "POST", s.url+"/v1/keys", "api-key", admin, `{"name":"metered","owner":"acme","credits":{"remaining":5}}`)
	expect(t, "create metered", m, 201, "")
	v := call(t, "POST", s.url+"/v1/verify", "api-key", admin, `{"key":"`+m.str("key")+`","credits":2}`)
	expect(t, "verify with credits", v, 200, "")
	if credits, _ := v.body["credits"].(map[string]any); credits["remaining"] != float64(3) {
		t.Errorf("verify with credits under tracing: %s", v.raw)
	}
	expect(t, "wrong secret", call(t, "GET", s.url+"/v1/whoami", "api-key", wrong, ""), 401, "invalid_key")
	s.stop(t)
	if s.err != nil {
		t.Fatalf("serve: %v\n%s", s.err, s.stderr)
	}
	if strings.Contains(s.stderr.String(), "OpenTelemetry") || strings.Contains(s.stderr.String(), "traces") {
		t.Errorf("serve logged a tracing problem:\n%s", s.stderr)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.errs) > 0 {
		t.Errorf("collector: %q", c.errs)
	}
	if len(c.bodies) == 0 {
		t.Fatal("the collector received no export request")
	}
	var outcomes, names []string
	services := map[string]bool{}
	for i, req := range c.requests {
		if len(c.bodies[i]) == 0 {
			t.Errorf("export request %d is empty", i)
		}
		for _, rs := range req.GetResourceSpans() {
			for _, kv := range rs.GetResource().GetAttributes() {
				if kv.GetKey() == "service.name" {
					services[kv.GetValue().GetStringValue()] = true
				}
			}
			for _, ss := range rs.GetScopeSpans() {
				for _, span := range ss.GetSpans() {
					names = append(names, span.GetName())
					if span.GetName() != "apikey.verify" {
						continue
					}
					for _, kv := range span.GetAttributes() {
						if kv.GetKey() == "apikey.outcome" {
							outcomes = append(outcomes, kv.GetValue().GetStringValue())
						}
					}
				}
			}
		}
	}
	slices.Sort(outcomes)
	// Three whoami, the admin key's three calls and the key /v1/verify
	// verified: seven valid; the wrong secret.
	if want := []string{"invalid_key", "valid", "valid", "valid", "valid", "valid", "valid", "valid"}; !slices.Equal(outcomes, want) {
		t.Errorf("verify outcomes %q, want %q (spans %q)", outcomes, want, names)
	}
	if !slices.Contains(names, "apikey.store.lookup") {
		t.Errorf("no store lookup span in %q", names)
	}
	if len(services) != 1 || !services["apikey-test"] {
		t.Errorf("service.name %v, want apikey-test", services)
	}
	for i, b := range c.bodies {
		for _, secret := range []string{demo, apikeytest.SecretOf(demo), wrong, apikeytest.SecretOf(wrong)} {
			if strings.Contains(string(b), secret) {
				t.Errorf("export request %d holds a secret", i)
			}
		}
	}
}
