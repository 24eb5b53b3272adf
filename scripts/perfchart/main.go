// Command perfchart draws a horizontal bar chart as SVG from lines of
// "section,label,value" on standard input (values of one section share a
// scale; a line starting with # is a comment), for docs/performance.md:
//
//	go run ./scripts/perfchart -title "apikey on 2 cores" < docs/performance-chart.csv > docs/performance-chart.svg
package main

import (
	"bufio"
	"flag"
	"fmt"
	"html"
	"io"
	"log"
	"os"
	"strconv"
	"strings"
)

type row struct {
	label string
	value float64
}

type section struct {
	name string
	rows []row
}

func main() {
	title := flag.String("title", "", "chart title")
	flag.Parse()
	secs, err := read(os.Stdin)
	if err != nil {
		log.Fatal(err)
	}
	draw(os.Stdout, *title, secs)
}

func read(r io.Reader) ([]*section, error) {
	var secs []*section
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ",")
		if len(f) != 3 {
			return nil, fmt.Errorf("line %d: want section,label,value", n)
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(f[2]), 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", n, err)
		}
		if len(secs) == 0 || secs[len(secs)-1].name != f[0] {
			secs = append(secs, &section{name: f[0]})
		}
		s := secs[len(secs)-1]
		s.rows = append(s.rows, row{strings.TrimSpace(f[1]), v})
	}
	return secs, sc.Err()
}

func draw(w io.Writer, title string, secs []*section) {
	const (
		width, labelW, barMax, rowH, headH, pad = 760, 300, 360, 22, 28, 16
	)
	height := pad + headH
	for _, s := range secs {
		height += headH + rowH*len(s.rows)
	}
	height += pad
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="13">`+"\n", width, height, width, height)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="#fff"/>`+"\n")
	y := pad
	fmt.Fprintf(w, `<text x="%d" y="%d" font-size="16" font-weight="bold">%s</text>`+"\n", pad, y+16, html.EscapeString(title))
	y += headH
	colors := []string{"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948"}
	for i, s := range secs {
		fmt.Fprintf(w, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", pad, y+18, html.EscapeString(s.name))
		y += headH
		max := 0.0
		for _, r := range s.rows {
			max = maxf(max, r.value)
		}
		for _, r := range s.rows {
			bw := 0.0
			if max > 0 {
				bw = r.value / max * barMax
			}
			fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", labelW, y+15, html.EscapeString(r.label))
			fmt.Fprintf(w, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", labelW+8, y+3, bw, rowH-6, colors[i%len(colors)])
			fmt.Fprintf(w, `<text x="%.1f" y="%d">%s</text>`+"\n", float64(labelW+12)+bw, y+15, strconv.FormatFloat(r.value, 'f', -1, 64))
			y += rowH
		}
	}
	fmt.Fprintln(w, "</svg>")
}

func maxf(a, b float64) float64 {
	if a > b {
		return a
	}
	return b
}
