package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A table is one benchmark's results as `make bench` writes them into
// docs/benchmarks.md: printed to the benchmark's log always, and saved as
// $MART_BENCH_RESULTS/<name>.md when that is set (the report assembles
// the files in name order).
type table struct {
	Title  string // a heading, e.g. "Router vs peer gateways"
	Intro  string // what was run, in a sentence or two (markdown)
	Header []string
	Rows   [][]string
	Notes  string // what to read into it (markdown), optional
}

func (t table) markdown() string {
	var s strings.Builder
	fmt.Fprintf(&s, "### %s\n\n", t.Title)
	if t.Intro != "" {
		fmt.Fprintf(&s, "%s\n\n", strings.TrimSpace(t.Intro))
	}
	row := func(cells []string) { fmt.Fprintf(&s, "| %s |\n", strings.Join(cells, " | ")) }
	row(t.Header)
	align := make([]string, len(t.Header))
	for i := range align {
		align[i] = "---:"
	}
	if len(align) > 0 {
		align[0] = "---"
	}
	row(align)
	for _, r := range t.Rows {
		row(r)
	}
	if t.Notes != "" {
		fmt.Fprintf(&s, "\n%s\n", strings.TrimSpace(t.Notes))
	}
	return s.String()
}

// writeTable logs t and saves it for the report under name (e.g.
// "20-gateways"; the number orders the sections).
func writeTable(b *testing.B, name string, t table) {
	b.Helper()
	md := t.markdown()
	b.Log("\n" + md)
	dir := os.Getenv("MART_BENCH_RESULTS")
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".md"), []byte(md), 0o644); err != nil {
		b.Fatal(err)
	}
}
