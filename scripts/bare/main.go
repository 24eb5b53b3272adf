// Command bare is the baseline of scripts/loadtest.sh: a bare net/http
// server that answers constant JSON bodies, as fast as the standard library
// serves anything. The load test measures `apikey serve` against it in the
// same run and reports ratios.
//
//	go run ./scripts/bare -addr 127.0.0.1:0 -size 300
//
// GET /hello answers {"status":"ok"} (the body of /healthz); GET /sized
// answers a JSON body of -size bytes (the size of the /v1/whoami answer it
// stands beside). Both carry the same response headers as apikey serve's
// JSON answers. It logs "bare: listening on http://HOST:PORT" on standard
// error and serves until killed.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	size := flag.Int("size", 300, "size in bytes of the body of /sized, newline included")
	flag.Parse()
	hello := []byte("{\"status\":\"ok\"}\n")
	sized := sizedBody(*size)
	mux := http.NewServeMux()
	mux.Handle("GET /hello", constant(hello))
	mux.Handle("GET /sized", constant(sized))
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "bare: listening on http://%s\n", ln.Addr())
	log.Fatal(http.Serve(ln, mux))
}

// constant answers body with the headers of apikey serve's JSON answers.
func constant(body []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		w.Write(body)
	})
}

// sizedBody returns a JSON object of n bytes (at least 12) ending in a
// newline.
func sizedBody(n int) []byte {
	const head, tail = `{"pad":"`, "\"}\n"
	pad := max(n-len(head)-len(tail), 0)
	return []byte(head + strings.Repeat("x", pad) + tail)
}
