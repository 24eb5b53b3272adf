package server_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
)

// Pools of hostile values the corpus draws from. Each holds a few sane
// values too, so that requests also get past the first check.
var (
	oddTimes = []string{
		"9999-12-31T23:59:59-23:59", // year 9999 as written, 10000 in UTC
		"9999-12-31T23:59:59.999999999Z",
		"9999-12-31T00:00:00+23:59",
		"0001-01-01T00:00:00+01:00", // year 0 in UTC
		"0001-01-01T00:00:00Z",
		"0000-01-01T00:00:00Z",
		"10000-01-01T00:00:00Z",
		"-0001-01-01T00:00:00Z",
		"2030-02-30T00:00:00Z",
		"2030-01-01T24:00:00Z",
		"2030-01-01T00:00:60Z",
		"2030-01-01T00:00:00+24:00",
		"2030-01-01T00:00:00.9999999999999Z",
		"2030-01-01T00:00:00Z\x00",
		"2030-01-01",
		"2030-01-01 00:00:00Z",
		"1970-01-01T00:00:00Z",
		"2030-01-03T00:00:00Z",
		"2099-06-01T12:00:00+02:00",
		"",
		"now",
		"1e400",
	}
	oddNumbers = []string{
		"0", "-1", "1", "2", "1000", "1001", "9223372036854775807", "9223372036854775808",
		"-9223372036854775808", "1e3", "0x10", "1.5", "NaN", "Infinity", "00001", "+5", "٣", "", " 5",
		"99999999999999999999999999999999",
	}
	oddStrings = []string{
		"", "a", "acme", "billing", "\x00", "a\x00b", "\xff", "\xc3", "\xed\xa0\x80", "\u0085", "\t", "a\r\nb",
		"\x1b[31m", "\u202e", "\ufeff", "😀", "café", strings.Repeat("a", 200), strings.Repeat("a", 201),
		strings.Repeat("é", 150), strings.Repeat("x", 5000), "%", "%00", "'; DROP TABLE apikey_keys;--",
		`\`, `"`, "<script>alert(1)</script>", "../..", "*", "a:*", "invoices:read", "a b", " ",
		"ak_AAAAAAAAAAAA_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	}
	saneStrings = []string{
		"a", "acme", "café", "😀 key", strings.Repeat("a", 200), strings.Repeat("é", 100), "'; DROP TABLE apikey_keys;--",
		`\`, `"quoted"`, "<script>alert(1)</script>", "../..", "%00", "\u0000", "org_1",
	}
	oddDurations = []string{
		"1d", "12h", "-1h", "0s", "99999999999999999999d", "9223372036854775807ns", "2562047h", "2562048h",
		"1w2d", "P1D", "", "\x00", "1e9h", "1.5h", "30d\x00", "٣d",
	}
	oddStates  = []string{"", "active", "expired", "revoked", "deleted", "ACTIVE", "\x00", "\xff"}
	oddTypes   = []string{"", "key.created", "key.updated", "key.revoked", "key.deleted", "key.rolled", "key.exploded", "\x00"}
	oddMethods = []string{"GET", "POST", "PATCH", "PUT", "DELETE", "HEAD", "OPTIONS", "BREW", "TRACE"}
	oddCTs     = []string{
		"application/json", "application/json", "application/json", "", "text/plain", "application/json; charset=latin1",
		"application/merge-patch+json", "application/json; charset=utf-8", "multipart/form-data; boundary=x",
		"application/x-www-form-urlencoded", "application/json; ;;",
	}
)

// oddCursors are list cursors: garbage, and well-formed ones at absurd
// instants or with a bad id.
func oddCursors() []string {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	return []string{
		"", "nope", "!!", "%00", "MQ", "MQ==",
		enc("9223372036854775807.AAAAAAAAAAAA"), enc("-9223372036854775808.AAAAAAAAAAAA"),
		enc("253402300800000000.AAAAAAAAAAAA"), enc("-62135596800000001.AAAAAAAAAAAA"),
		enc("0.AAAAAAAAAAAA"), enc("1.\x00"), enc("abc.def"), enc("1893553445000000.AAAAAAAAAAAA"),
		enc("1893553445000000.AAAAAAAAAAAA\x00"), enc(strings.Repeat("9", 400) + ".AAAAAAAAAAAA"),
		"-3", "0", "1", "9223372036854775807", "18446744073709551616",
	}
}

// corpus generates hostile requests deterministically.
type corpus struct {
	r       *rand.Rand
	ids     []string // key ids to aim at; the fixture's own keys are not among them
	cursors []string
}

func (c *corpus) pick(pool []string) string { return pool[c.r.IntN(len(pool))] }

// jsonValue returns a JSON value of a random kind; strings are written
// with escapes (valid JSON) or raw (invalid UTF-8 and control characters
// reach the decoder as they are).
func (c *corpus) jsonValue(pool []string) string {
	switch c.r.IntN(12) {
	case 0:
		return c.pick(oddNumbers[:12]) // some of which are not JSON
	case 1:
		return "null"
	case 2:
		return "true"
	case 3:
		return "[" + c.jsonString(pool) + "]"
	case 4:
		return "{}"
	case 5:
		return `"` + c.pick(pool) + `"` // raw
	case 6:
		return `"\u0000"`
	default:
		return c.jsonString(pool)
	}
}

func (c *corpus) jsonString(pool []string) string {
	b, _ := json.Marshal(c.pick(pool))
	return string(b)
}

// body returns a JSON object with a random subset of fields, sometimes
// damaged.
func (c *corpus) body(fields map[string]func() string) string {
	var parts []string
	for _, name := range []string{"name", "owner", "scopes", "metadata", "expires_at", "expires_in", "key", "bogus"} {
		gen, ok := fields[name]
		if !ok || c.r.IntN(3) == 0 {
			continue
		}
		parts = append(parts, strconv.Quote(name)+":"+gen())
	}
	b := "{" + strings.Join(parts, ",") + "}"
	switch c.r.IntN(10) {
	case 0:
		return b[:c.r.IntN(len(b)+1)] // truncated
	case 1:
		return b + c.pick([]string{"garbage", " {}", "\x00", ","})
	case 2:
		return c.pick([]string{"", "null", "[]", `"x"`, "5", strings.Repeat("[", 10000), "\xff\xfe", "{\"name\":\"a\x01b\"}"})
	}
	return b
}

func (c *corpus) keyFields() map[string]func() string {
	scopes := func() string {
		if c.r.IntN(4) == 0 {
			return c.jsonValue(oddStrings)
		}
		n := c.r.IntN(4)
		if c.r.IntN(20) == 0 {
			n = 101
		}
		items := make([]string, n)
		for i := range items {
			items[i] = c.jsonValue(oddStrings)
		}
		return "[" + strings.Join(items, ",") + "]"
	}
	metadata := func() string {
		if c.r.IntN(4) == 0 {
			return c.jsonValue(oddStrings)
		}
		n := c.r.IntN(3)
		if c.r.IntN(20) == 0 {
			n = 51
		}
		items := make([]string, n)
		for i := range items {
			items[i] = c.jsonString(append(oddStrings, "k"+strconv.Itoa(i))) + ":" + c.jsonValue(oddStrings)
		}
		return "{" + strings.Join(items, ",") + "}"
	}
	return map[string]func() string{
		"name":       func() string { return c.jsonValue(oddStrings) },
		"owner":      func() string { return c.jsonValue(oddStrings) },
		"scopes":     scopes,
		"metadata":   metadata,
		"expires_at": func() string { return c.jsonValue(oddTimes) },
		"expires_in": func() string { return c.jsonValue(oddDurations) },
		"bogus":      func() string { return "1" },
	}
}

// query returns a query string over the parameters, with values from
// their pools, sometimes repeated, unknown or badly escaped.
func (c *corpus) query(params map[string][]string) string {
	q := url.Values{}
	for _, name := range slices.Sorted(maps.Keys(params)) { // in a fixed order: the corpus is the same every run
		pool := params[name]
		if c.r.IntN(2) == 0 {
			continue
		}
		q.Add(name, c.pick(pool))
		if c.r.IntN(15) == 0 {
			q.Add(name, c.pick(pool))
		}
	}
	if c.r.IntN(15) == 0 {
		q.Set(c.pick(oddStrings), "1")
	}
	s := q.Encode()
	switch c.r.IntN(15) {
	case 0:
		s += "&search=%zz"
	case 1:
		s += "&;;&=&" + strings.Repeat("a", 3000)
	}
	if s == "" {
		return ""
	}
	return "?" + s
}

// request is one generated request.
type request struct {
	method, path, ct, body string
	raw                    bool // send over a bare connection: the path is not a URL net/http would send
	site                   bool // an admin site page: send with the session cookie
}

func (c *corpus) next() request {
	id := c.pick(c.ids)
	switch c.r.IntN(12) {
	case 0:
		return request{method: "POST", path: "/v1/keys", ct: c.pick(oddCTs), body: c.body(c.keyFields())}
	case 1:
		// A sane key with one odd field: most of these get stored, and
		// the listings then hold what the stores accepted.
		fields := map[string]string{
			"name": c.jsonString(saneStrings), "owner": c.jsonString(saneStrings), "scopes": `["a:*","invoices:read"]`,
			"metadata": `{"env":` + c.jsonString(saneStrings) + `}`, "expires_at": `"2099-01-01T00:00:00Z"`,
		}
		odd := c.pick([]string{"name", "owner", "scopes", "metadata", "expires_at", "expires_in"})
		fields[odd] = c.keyFields()[odd]()
		if odd == "expires_in" {
			delete(fields, "expires_at")
		}
		var parts []string
		for _, name := range slices.Sorted(maps.Keys(fields)) {
			parts = append(parts, strconv.Quote(name)+":"+fields[name])
		}
		return request{method: "POST", path: "/v1/keys", ct: "application/json", body: "{" + strings.Join(parts, ",") + "}"}
	case 2:
		return request{method: "PATCH", path: "/v1/keys/" + id, ct: c.pick(oddCTs), body: c.body(c.keyFields())}
	case 3:
		return request{method: "GET", path: "/v1/keys" + c.query(map[string][]string{
			"owner": oddStrings, "state": oddStates, "search": oddStrings, "limit": oddNumbers, "cursor": c.cursors,
			"created_from": oddTimes,
		})}
	case 4:
		return request{method: "GET", path: "/v1/events" + c.query(map[string][]string{
			"key_id": append(oddStrings, c.ids...), "actor": oddStrings, "type": oddTypes, "limit": oddNumbers, "cursor": c.cursors,
		})}
	case 5:
		return request{method: "GET", path: "/v1/keys/" + id + "/usage" + c.query(map[string][]string{
			"from": oddTimes, "to": oddTimes, "granularity": {"", "minute", "hour", "day", "\x00"},
		})}
	case 6:
		return request{method: "POST", path: "/v1/verify", ct: c.pick(oddCTs), body: c.body(map[string]func() string{
			"key":    func() string { return c.jsonValue(oddStrings) },
			"scopes": c.keyFields()["scopes"],
			"bogus":  func() string { return "1" },
		})}
	case 7:
		// Path garbage and methods on every route, sent as they are.
		seg := c.pick(append([]string{id, "%00", "%ff", "%zz", "..", "%2F", "\xff", "A%00AAAAAAAAAA", strings.Repeat("A", 13),
			strings.Repeat("x", 3000), "٣٣٣٣٣٣٣٣٣٣٣٣"}, c.ids...))
		suffix := c.pick([]string{"", "/", "/revoke", "/roll", "/usage", "/x", "/../", "/revoke/again"})
		base := c.pick([]string{"/v1/keys/", "/v1/", "/", "/v1/keys/" + id + "/", "/admin/keys/", "/admin/", "/v2/keys/"})
		return request{method: c.pick(oddMethods), path: base + seg + suffix, raw: true}
	case 8:
		return request{method: "GET", site: true, path: "/admin/keys" + c.query(map[string][]string{
			"q": oddStrings, "state": oddStates, "owner": oddStrings, "created_from": append(oddTimes, "0000-01-01", "9999-12-31", "2030-01-01"),
			"created_to": append(oddTimes, "0000-12-31", "9999-12-31", "2030-01-01"), "cursor": c.cursors,
		})}
	case 9:
		return request{method: "GET", site: true, path: "/admin/events" + c.query(map[string][]string{
			"key_id": append(oddStrings, c.ids...), "actor": oddStrings, "type": oddTypes, "cursor": c.cursors,
		})}
	case 10:
		form := url.Values{}
		for _, name := range []string{"name", "owner", "scopes", "metadata"} {
			if c.r.IntN(4) > 0 {
				form.Set(name, c.pick(oddStrings))
			}
		}
		if c.r.IntN(4) > 0 {
			form.Set("expires_at", c.pick(append(oddTimes, oddDurations...)))
		}
		path := c.pick([]string{"/admin/keys", "/admin/keys/" + id + "/edit", "/admin/keys/" + id + "/revoke", "/admin/keys/revoke-selected"})
		if strings.HasSuffix(path, "revoke-selected") {
			form["id"] = []string{c.pick(c.ids), c.pick(oddStrings)}
		}
		return request{method: "POST", site: true, path: path, ct: "application/x-www-form-urlencoded", body: form.Encode()}
	default:
		form := url.Values{"email": {c.pick(append(oddStrings, "alice@example.com", "ALICE@example.com", "a\x00@example.com"))},
			"password": {c.pick(append(oddStrings, strings.Repeat("p", 1025)))}}
		if c.r.IntN(5) == 0 {
			form.Set("next", c.pick(append(oddStrings, "/admin/keys", "//evil.example", "/admin/%00")))
		}
		body := form.Encode()
		if c.r.IntN(10) == 0 {
			body = c.pick([]string{"email=%zz&password=x", "email=a%00&password=" + strings.Repeat("x", 100000), "\x00\xff"})
		}
		return request{method: "POST", path: "/admin/login", ct: "application/x-www-form-urlencoded", body: body}
	}
}

// TestHostileCorpus sends a few thousand deterministic hostile requests to
// the API and the admin site over real HTTP, on SQLite and PostgreSQL, and
// fails on any answer >= 500: bad input is always the client's fault.
func TestHostileCorpus(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			testHostileCorpus(t, backend, 3000)
		})
	}
}

func testHostileCorpus(t *testing.T, backend string, n int) {
	f := newFixture(t, options{http: true, backend: backend, admin: true})
	ctx := t.Context()
	var ids []string
	for _, name := range []string{"one", "two", "three"} {
		k, _, err := f.m.Create(ctx, apikey.CreateParams{Name: name, Owner: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, k.ID)
	}
	ids = append(ids, "AAAAAAAAAAAA")
	site := f.signIn(t)
	api := f.ts.Client()
	c := &corpus{r: rand.New(rand.NewPCG(1, 2)), ids: ids, cursors: oddCursors()}
	var failures []string
	statuses := map[int]int{}
	start := time.Now()
	for i := range n {
		rq := c.next()
		status, body, err := f.send(rq, api, site)
		if err != nil {
			t.Fatalf("request %d %s %q: %v", i, rq.method, rq.path, err)
		}
		statuses[status]++
		if status >= 500 {
			failures = append(failures, fmt.Sprintf("#%d %s %q (%q) body %q: %d %.300s", i, rq.method, rq.path, rq.ct, truncateQ(rq.body, 300), status, body))
		}
	}
	t.Logf("%d requests in %v, by status: %v", n, time.Since(start).Round(time.Millisecond), statuses)
	for i, fl := range failures {
		if i == 20 {
			t.Errorf("... and %d more", len(failures)-20)
			break
		}
		t.Error(fl)
	}
	// Whatever was stored can be listed, page by page, and shown.
	for cursor := ""; ; {
		r := f.do(t, req{method: "GET", path: "/v1/keys?limit=100&cursor=" + url.QueryEscape(cursor), token: f.admin})
		mustStatus(t, r, http.StatusOK, "list after the corpus")
		var page apikey.Page
		r.json(t, &page)
		for _, k := range page.Keys {
			mustStatus(t, f.do(t, req{method: "GET", path: "/v1/keys/" + k.ID, token: f.admin}), http.StatusOK, "get "+k.ID)
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if status, body, _ := f.send(request{method: "GET", path: "/admin/keys", site: true}, api, site); status != http.StatusOK {
		t.Errorf("admin key list after the corpus: %d %.300s", status, body)
	}
}

func truncateQ(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// signIn returns a client with an admin site session.
func (f *fixture) signIn(t *testing.T) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	form := url.Values{"email": {adminEmail}, "password": {adminPassword}}
	res, err := c.PostForm(f.ts.URL+"/admin/login", form)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("admin login: status %d, want 303", res.StatusCode)
	}
	return c
}

// send sends rq: as it is over a bare connection when rq.raw, else with
// the admin key (API) or the session (site).
func (f *fixture) send(rq request, api, site *http.Client) (int, string, error) {
	if rq.raw {
		return f.sendRaw(rq)
	}
	var body io.Reader = http.NoBody
	if rq.body != "" {
		body = strings.NewReader(rq.body)
	}
	r, err := http.NewRequest(rq.method, f.ts.URL+rq.path, body)
	if err != nil {
		return 0, "", err
	}
	if rq.ct != "" {
		r.Header.Set("Content-Type", rq.ct)
	}
	client := api
	if rq.site || strings.HasPrefix(rq.path, "/admin/") {
		client = site
		if !rq.site {
			client = &http.Client{Transport: api.Transport, CheckRedirect: site.CheckRedirect}
		}
	} else {
		r.Header.Set("Authorization", "Api-Key "+f.admin)
	}
	res, err := client.Do(r)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	return res.StatusCode, string(b), err
}

// sendRaw writes the request line as it is, with the admin key, on a
// connection of its own.
func (f *fixture) sendRaw(rq request) (int, string, error) {
	conn, err := net.DialTimeout("tcp", f.ts.Listener.Addr().String(), 5*time.Second)
	if err != nil {
		return 0, "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: apikey.test\r\nAuthorization: Api-Key %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", rq.method, rq.path, f.admin)
	if _, err := conn.Write(b.Bytes()); err != nil {
		return 0, "", err
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	return res.StatusCode, string(body), nil
}
