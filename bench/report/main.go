// Command report assembles the benchmarks' result tables (the files
// bench's writeTable saves in $MART_BENCH_RESULTS) with a description of
// the machine, prints them, and with -out replaces the generated part of
// a markdown file (docs/benchmarks.md) between its two marker lines.
//
//	go run ./bench/report -results tmp/bench -out docs/benchmarks.md
package main

import (
	"bytes"
	"context"
	"database/sql"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

const (
	begin = "<!-- results: written by `make bench` (bench/report); edits here are lost -->"
	end   = "<!-- end of results -->"
)

func main() {
	results := flag.String("results", "", "directory of result tables (*.md)")
	out := flag.String("out", "", "markdown file whose results section to replace; empty: print only")
	flag.Parse()
	if err := run(*results, *out); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func run(results, out string) error {
	files, err := filepath.Glob(filepath.Join(results, "*.md"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no result tables in %q", results)
	}
	var body strings.Builder
	body.WriteString(machine())
	for _, f := range files { // Glob sorts: the numbers in the names order the sections
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		body.WriteString("\n")
		body.Write(bytes.TrimSpace(b))
		body.WriteString("\n")
	}
	fmt.Print(body.String())
	if out == "" {
		return nil
	}
	doc, err := os.ReadFile(out)
	if err != nil {
		return err
	}
	before, rest, ok1 := strings.Cut(string(doc), begin)
	_, after, ok2 := strings.Cut(rest, end)
	if !ok1 || !ok2 {
		return fmt.Errorf("%s lacks the marker lines %q and %q", out, begin, end)
	}
	return os.WriteFile(out, []byte(before+begin+"\n"+body.String()+end+after), 0o644)
}

// machine describes where and on what the numbers were measured: they
// mean little without it.
func machine() string {
	var s strings.Builder
	fmt.Fprintf(&s, "Measured %s at commit `%s`.\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), commit())
	fmt.Fprintf(&s, "| | |\n|---|---|\n")
	fmt.Fprintf(&s, "| CPU | %d × %s |\n", runtime.NumCPU(), cpuModel())
	fmt.Fprintf(&s, "| memory | %s |\n", memTotal())
	fmt.Fprintf(&s, "| kernel | %s |\n", output("uname", "-sr"))
	fmt.Fprintf(&s, "| Go | %s %s/%s |\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(&s, "| PostgreSQL | %s |\n", postgresVersion())
	fmt.Fprintf(&s, "| Node.js (peer gateways) | %s |\n", output("node", "--version"))
	return s.String()
}

func commit() string {
	c := output("git", "rev-parse", "--short", "HEAD")
	if output("git", "status", "--porcelain", "--untracked-files=no") != "" {
		c += " + uncommitted changes"
	}
	return c
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func memTotal() string {
	b, _ := os.ReadFile("/proc/meminfo")
	var kb int64
	for line := range strings.Lines(string(b)) {
		if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &kb); err == nil {
			return fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	return "unknown"
}

func postgresVersion() string {
	url := os.Getenv("DATABASE_URL")
	if url == "" {
		url = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		return "unknown"
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var v string
	if err := db.QueryRowContext(ctx, "SELECT version()").Scan(&v); err != nil {
		return "unknown"
	}
	v, _, _ = strings.Cut(v, ",") // "PostgreSQL 15.x (Debian …) on x86_64-pc-linux-gnu"
	return v
}

// output runs a command and returns its trimmed output, or "unknown".
func output(name string, args ...string) string {
	b, err := exec.Command(name, args...).Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}
