package system_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/onlinemart/mart/system"
	"github.com/onlinemart/mart/testkit/systemtest"
)

// The parts every service folder has, and what each must declare.
var shape = []struct {
	file    string
	declare []string // top-level names the file must declare
}{
	{"<svc>.go", []string{"Spec"}},
	{"schema.graphqls", nil},
	{"gqlgen.yml", nil},
	{"graph/access.go", []string{"Access"}},
	{"graph/resolver.go", []string{"Resolver"}},
	{"core/handlers.go", []string{"Consumes", "RegisterHandlers"}},
	{"core/events.go", []string{"Publishes"}},
}

// checkShape returns what the service folder dir (of service name) lacks.
func checkShape(dir, name string) []string {
	var problems []string
	for _, part := range shape {
		file := strings.ReplaceAll(part.file, "<svc>", name)
		problems = append(problems, checkPart(dir, file, part.declare)...)
	}
	return append(problems, checkStoreConstructor(filepath.Join(dir, "core"))...)
}

// checkPart returns what file of the service folder dir lacks: the file
// itself, or the top-level names it must declare (and, for the resolver,
// its Store field).
func checkPart(dir, file string, declare []string) []string {
	path := filepath.Join(dir, file)
	if _, err := os.Stat(path); err != nil {
		return []string{"no " + file}
	}
	if declare == nil {
		return nil
	}
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	declared := topLevelNames(f)
	for _, want := range declare {
		if !declared[want] {
			problems = append(problems, fmt.Sprintf("%s does not declare %s", file, want))
		}
	}
	if file == "graph/resolver.go" && !structHasField(f, "Resolver", "Store") {
		problems = append(problems, "graph/resolver.go: the Resolver's store field is not named Store")
	}
	return problems
}

// checkStoreConstructor returns what is wrong with the store constructors
// of the package in dir (its files other than tests): there must be one,
// core.New<Store>(db *bun.DB, opts Options).
func checkStoreConstructor(dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	constructors := 0
	fset := token.NewFileSet()
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, 0)
		if err != nil {
			return []string{err.Error()}
		}
		for _, d := range f.Decls {
			if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil && strings.HasPrefix(fn.Name.Name, "New") && takesDB(fn) {
				constructors++
				if p := fn.Type.Params.List; len(p) != 2 || len(p[1].Names) > 1 || types(p[1].Type) != "Options" {
					problems = append(problems, fmt.Sprintf("core.%s: a store is built with (db *bun.DB, opts Options)", fn.Name.Name))
				}
			}
		}
	}
	if constructors != 1 {
		problems = append(problems, fmt.Sprintf("core has %d store constructors New…(db *bun.DB, …), want one", constructors))
	}
	return problems
}

func topLevelNames(f *ast.File) map[string]bool {
	names := map[string]bool{}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			names[d.Name.Name] = true
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.ValueSpec:
					for _, n := range s.Names {
						names[n.Name] = true
					}
				case *ast.TypeSpec:
					names[s.Name.Name] = true
				}
			}
		}
	}
	return names
}

func structHasField(f *ast.File, typeName, field string) bool {
	found := false
	ast.Inspect(f, func(n ast.Node) bool {
		if ts, ok := n.(*ast.TypeSpec); ok && ts.Name.Name == typeName {
			if st, ok := ts.Type.(*ast.StructType); ok {
				for _, fl := range st.Fields.List {
					for _, n := range fl.Names {
						found = found || n.Name == field
					}
				}
			}
		}
		return true
	})
	return found
}

func takesDB(fn *ast.FuncDecl) bool {
	p := fn.Type.Params.List
	return len(p) > 0 && types(p[0].Type) == "*bun.DB"
}

func types(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.StarExpr:
		return "*" + types(e.X)
	case *ast.SelectorExpr:
		return types(e.X) + "." + e.Sel.Name
	case *ast.Ident:
		return e.Name
	}
	return fmt.Sprintf("%T", e)
}

// Every service folder has the one shape, and the target table lists
// exactly the folders.
func TestEveryServiceHasTheShape(t *testing.T) {
	root := systemtest.RepoRoot()
	entries, err := os.ReadDir(filepath.Join(root, "subgraphs"))
	if err != nil {
		t.Fatal(err)
	}
	var folders []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		folders = append(folders, e.Name())
		for _, p := range checkShape(filepath.Join(root, "subgraphs", e.Name()), e.Name()) {
			t.Errorf("subgraphs/%s: %s", e.Name(), p)
		}
	}
	if names := system.ServiceNames(); !slices.Equal(slices.Sorted(slices.Values(names)), folders) {
		t.Errorf("the target table has services %v, subgraphs/ has %v", names, folders)
	}
	for _, t2 := range system.Services() {
		if spec := t2.Service(new(system.Config)); spec.Name != t2.Name {
			t.Errorf("target %s runs a spec named %s", t2.Name, spec.Name)
		}
	}
}

// The shape check is not vacuous: a copy of a service folder with one part
// broken at a time fails it, naming the part.
func TestShapeCheckNamesWhatABrokenCopyLacks(t *testing.T) {
	src := filepath.Join(systemtest.RepoRoot(), "subgraphs", "product")
	breaks := map[string]func(dir string) error{
		"no graph/access.go": func(dir string) error { return os.Remove(filepath.Join(dir, "graph", "access.go")) },
		"no core/handlers.go": func(dir string) error {
			return os.Remove(filepath.Join(dir, "core", "handlers.go"))
		},
		"core/events.go does not declare Publishes": func(dir string) error {
			return replaceIn(filepath.Join(dir, "core", "events.go"), "var Publishes", "var Published")
		},
		"the Resolver's store field is not named Store": func(dir string) error {
			return replaceIn(filepath.Join(dir, "graph", "resolver.go"), "\tStore ", "\tCatalog ")
		},
		"a store is built with (db *bun.DB, opts Options)": func(dir string) error {
			return replaceIn(filepath.Join(dir, "core", "catalog.go"), "(db *bun.DB, _ Options)", "(db *bun.DB, log *slog.Logger)")
		},
	}
	if problems := checkShape(src, "product"); len(problems) > 0 {
		t.Fatalf("the original fails: %v", problems)
	}
	for want, breakIt := range breaks {
		dir := t.TempDir()
		if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
			t.Fatal(err)
		}
		if err := breakIt(dir); err != nil {
			t.Fatal(err)
		}
		problems := checkShape(dir, "product")
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, want) }) {
			t.Errorf("broken so that %q: the check says %v", want, problems)
		}
	}
}

func replaceIn(path, old, replacement string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !strings.Contains(string(b), old) {
		return fmt.Errorf("%s has no %q", path, old)
	}
	return os.WriteFile(path, []byte(strings.Replace(string(b), old, replacement, 1)), 0o644)
}

// goFiles returns the hand-written Go files under dir, relative to the
// repository, tests included or not.
func goFiles(t *testing.T, dir string, tests bool) []string {
	t.Helper()
	root := systemtest.RepoRoot()
	var files []string
	err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		name := d.Name()
		if d.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, ".pb.go") ||
			name == "generated.go" || name == "models_gen.go" || name == "federation.go" ||
			(!tests && strings.HasSuffix(name, "_test.go")) {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		files = append(files, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// The platform stands on its own: no package in internal/, its tests
// included, depends on a service, the router or the composition root.
func TestInternalImportsNoComponent(t *testing.T) {
	cmd := exec.Command("go", "list", "-test", "-f", `{{.ImportPath}} {{join .Deps " "}}`, "./internal/...")
	cmd.Dir = systemtest.RepoRoot()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for line := range strings.Lines(string(out)) {
		pkg, deps, _ := strings.Cut(strings.TrimSpace(line), " ")
		for dep := range strings.FieldsSeq(deps) {
			for _, above := range []string{"subgraphs", "router", "system"} {
				if dep == "github.com/onlinemart/mart/"+above || strings.HasPrefix(dep, "github.com/onlinemart/mart/"+above+"/") {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
		}
	}
}

var varName = regexp.MustCompile(`^"(MART|KAFKA|DATABASE)_[A-Z0-9_]*[A-Z0-9]"$`)

// Every variable is named once, where its component declares it: a name
// in a string anywhere else in the product's code is a second copy that
// can drift (tests may name variables, as operators do).
func TestVariablesAreNamedOnlyWhereDeclared(t *testing.T) {
	declared := map[string]bool{}
	for _, v := range system.Vars() {
		if declared[v.Name] {
			t.Errorf("%s is declared twice", v.Name)
		}
		declared[v.Name] = true
	}
	root := systemtest.RepoRoot()
	for _, dir := range []string{"cmd", "internal", "router", "subgraphs", "system"} {
		for _, file := range goFiles(t, dir, false) {
			f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(root, file), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			declares := false
			ast.Inspect(f, func(n ast.Node) bool {
				if sel, ok := n.(*ast.SelectorExpr); ok {
					if x, ok := sel.X.(*ast.Ident); ok && x.Name == "envvar" {
						declares = true
					}
				}
				return true
			})
			ast.Inspect(f, func(n ast.Node) bool {
				lit, ok := n.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING || !varName.MatchString(lit.Value) {
					return true
				}
				name, _ := strconv.Unquote(lit.Value)
				switch {
				case !declares:
					t.Errorf("%s names %s outside the config declarations", file, name)
				case !declared[name]:
					t.Errorf("%s names %s, which is not declared", file, name)
				}
				return true
			})
		}
	}
}

// docs/event-flow.md is the map the specs declare, and the map has no gap.
func TestEventFlowIsCompleteAndCurrent(t *testing.T) {
	flows := system.EventFlow(new(system.Config))
	if err := system.CheckEventFlow(flows); err != nil {
		t.Error(err)
	}
	var b strings.Builder
	if err := system.WriteEventFlow(&b, flows); err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile(filepath.Join(systemtest.RepoRoot(), "docs", "event-flow.md"))
	if err != nil || string(committed) != b.String() {
		t.Errorf("docs/event-flow.md is stale (%v): run make generate", err)
	}
}

// The check finds both kinds of gap.
func TestEventFlowCheckFindsGaps(t *testing.T) {
	err := system.CheckEventFlow([]system.Flow{
		{Type: "mart.a.v1.Orphan", Publisher: "a"},
		{Type: "mart.b.v1.Unknown", Consumers: []string{"c"}},
		{Type: "mart.inventory.v1.StockLow", Publisher: "inventory"},
	})
	if err == nil || !strings.Contains(err.Error(), "mart.a.v1.Orphan is published by a but no service consumes it") ||
		!strings.Contains(err.Error(), "mart.b.v1.Unknown is consumed by c but no service publishes it") ||
		strings.Contains(err.Error(), "StockLow") {
		t.Errorf("check: %v", err)
	}
}
