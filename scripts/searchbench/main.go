// Command searchbench measures GET /v1/keys with search and state filters
// against a running `apikey serve` holding keys made by `apikey seed`
// (names seed-N, owners owner-K): the latency percentiles of each kind of
// query, sequential requests over one keep-alive connection. It is run by
// scripts/searchbench.sh, by hand.
//
//	APIKEY_BENCH_KEY=ak_... go run ./scripts/searchbench -url http://127.0.0.1:8080 -keys 1000000 -n 100
//
// The admin key is read from APIKEY_BENCH_KEY, never from the command line.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

func main() {
	base := flag.String("url", "", "URL of apikey serve")
	keys := flag.Int("keys", 1000000, "number of seeded keys (names seed-0 to seed-N-1)")
	owners := flag.Int("owners", 100, "number of seeded owners")
	n := flag.Int("n", 100, "requests per kind of query")
	revoke := flag.Int("revoke", 100, "revoke this many of the newest keys first (idempotent), for state=revoked")
	flag.Parse()
	token := os.Getenv("APIKEY_BENCH_KEY")
	if *base == "" || token == "" {
		log.Fatal("searchbench: -url and APIKEY_BENCH_KEY are required")
	}
	c := &client{base: *base, token: token, hc: &http.Client{Timeout: time.Minute}}
	r := rand.New(rand.NewPCG(1, 2))

	// Real ids, for id searches.
	var page struct {
		Keys []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"keys"`
	}
	if err := c.get("/v1/keys?limit=1000", &page); err != nil {
		log.Fatal(err)
	}
	if len(page.Keys) == 0 {
		log.Fatal("searchbench: no keys")
	}
	for _, k := range page.Keys[:min(*revoke+1, len(page.Keys))] {
		if !strings.HasPrefix(k.Name, "seed-") {
			continue // the admin key
		}
		if err := c.do("POST", "/v1/keys/"+k.ID+"/revoke", nil); err != nil {
			log.Fatal(err)
		}
	}
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	kinds := []struct {
		name string
		q    func() url.Values
	}{
		{"search: 8 characters of an id (1 key)", func() url.Values {
			id := page.Keys[r.IntN(len(page.Keys))].ID
			i := r.IntN(len(id) - 7)
			return url.Values{"search": {id[i : i+8]}}
		}},
		{"search: a whole name (1 key)", func() url.Values { return url.Values{"search": {fmt.Sprintf("seed-%d", r.IntN(*keys))}} }},
		{"search: seed-NNN (~1,100 keys)", func() url.Values {
			return url.Values{"search": {fmt.Sprintf("seed-%d", 100+r.IntN(900))}}
		}},
		{"search: an owner (1 % of keys)", func() url.Values { return url.Values{"search": {fmt.Sprintf("owner-%d", r.IntN(*owners))}} }},
		{"search: seed (every key)", func() url.Values { return url.Values{"search": {"seed"}} }},
		{"search: absent text (no key)", func() url.Values {
			b := make([]byte, 8)
			for i := range b {
				b[i] = alphabet[r.IntN(len(alphabet))]
			}
			return url.Values{"search": {"zq" + string(b)}}
		}},
		{"search: 2 characters", func() url.Values {
			return url.Values{"search": {string(alphabet[r.IntN(62)]) + string(alphabet[r.IntN(62)])}}
		}},
		{"state=revoked", func() url.Values { return url.Values{"state": {"revoked"}} }},
		{"state=expired", func() url.Values { return url.Values{"state": {"expired"}} }},
		{"owner + state=active", func() url.Values {
			return url.Values{"owner": {fmt.Sprintf("owner-%d", r.IntN(*owners))}, "state": {"active"}}
		}},
	}
	var all []time.Duration
	fmt.Printf("%-40s %8s %8s %8s %8s\n", "query (page of 50)", "p50 ms", "p90 ms", "p99 ms", "max ms")
	for _, k := range kinds {
		var ds []time.Duration
		for range *n {
			q := k.q()
			start := time.Now()
			if err := c.get("/v1/keys?"+q.Encode(), nil); err != nil {
				log.Fatalf("%s: %v", q.Encode(), err)
			}
			ds = append(ds, time.Since(start))
		}
		all = append(all, ds...)
		report(k.name, ds)
	}
	report("all of the above", all)
}

func report(name string, ds []time.Duration) {
	slices.Sort(ds)
	p := func(q float64) float64 {
		return float64(ds[min(len(ds)-1, int(q*float64(len(ds))))]) / 1e6
	}
	fmt.Printf("%-40s %8.2f %8.2f %8.2f %8.2f\n", name, p(0.50), p(0.90), p(0.99), float64(ds[len(ds)-1])/1e6)
}

type client struct {
	base, token string
	hc          *http.Client
}

func (c *client) get(path string, v any) error { return c.do("GET", path, v) }

func (c *client) do(method, path string, v any) error {
	req, err := http.NewRequest(method, c.base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Api-Key "+c.token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if v == nil {
		v = &json.RawMessage{}
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
