// Command mixedtext writes deterministic mixed text (see
// internal/mixedtext) for measuring apikey scan: run by
// scripts/scanbench.sh, by hand.
//
//	go run ./scripts/mixedtext -size 1G -o /tmp/apikey-scan-1g.txt
//
// It prints, on standard error, the bytes, lines, real tokens and near
// misses written.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/go-apikey/apikey/internal/mixedtext"
)

func main() {
	size := flag.String("size", "1G", "how much to write: a number of bytes, or with a K, M or G suffix")
	out := flag.String("o", "", "the file to write (required)")
	seed := flag.Uint64("seed", 1, "the seed of the text")
	flag.Parse()
	n, err := parseSize(*size)
	if err != nil || *out == "" {
		fmt.Fprintln(os.Stderr, "usage: mixedtext -size 1G -o FILE")
		os.Exit(2)
	}
	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mixedtext:", err)
		os.Exit(1)
	}
	st, err := mixedtext.Write(f, n, mixedtext.Options{Seed: *seed})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mixedtext:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "mixedtext: %s: %d bytes, %d lines, %d tokens, %d near misses\n", *out, st.Bytes, st.Lines, len(st.Tokens), st.NearMisses)
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n * mult, err
}
