package deploy_test

import (
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/onlinemart/mart/router"
	"github.com/onlinemart/mart/system"
)

// martBinary is where the image keeps mart; compose's healthchecks run it.
const martBinary = "/usr/local/bin/mart"

func dockerfile(t *testing.T) (map[string]string, []*stage) {
	t.Helper()
	args, stages := parseDockerfile(t, readFile(t, "Dockerfile"))
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a build and a runtime stage", len(stages))
	}
	return args, stages
}

func stageNamed(stages []*stage, name string) *stage {
	for _, s := range stages {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// execForm parses the JSON array form of CMD, ENTRYPOINT and HEALTHCHECK.
func execForm(t *testing.T, in instruction, s string) []string {
	t.Helper()
	var out []string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		t.Errorf("Dockerfile:%d: %s %s: want the exec (JSON array) form, the runtime image has no shell: %v", in.Line, in.Cmd, s, err)
	}
	return out
}

func TestDockerfileBuildStage(t *testing.T) {
	_, stages := dockerfile(t)
	build := stages[0]
	// The Go of go.mod's go line.
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(readFile(t, "go.mod"))
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	if want := "golang:" + m[1]; build.From != want && !strings.HasPrefix(build.From, want+"-") && !strings.HasPrefix(build.From, want+".") {
		t.Errorf("build stage FROM %s, want %s (go.mod says go %s)", build.From, want, m[1])
	}
	var download, compile *instruction
	for i, in := range build.Instr {
		if in.Cmd != "RUN" {
			continue
		}
		if strings.Contains(in.Args, "go mod download") {
			download = &build.Instr[i]
		}
		if strings.Contains(in.Args, "go build") {
			compile = &build.Instr[i]
		}
	}
	if download == nil || !strings.Contains(download.Args, "--mount=type=cache,target=/go/pkg/mod") {
		t.Error("build stage: want `RUN --mount=type=cache,target=/go/pkg/mod go mod download`")
	}
	if compile == nil {
		t.Fatal("build stage: no go build")
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version=", "./cmd/mart", "--mount=type=cache,target=/go/pkg/mod"} {
		if !strings.Contains(compile.Args, want) {
			t.Errorf("Dockerfile:%d: go build without %s", compile.Line, want)
		}
	}
	// -X main.version needs the variable it sets.
	if !regexp.MustCompile(`(?m)^var version\b`).MatchString(readFile(t, "cmd/mart/main.go")) {
		t.Error("cmd/mart/main.go has no `var version` for -X main.version")
	}
	// The modules are downloaded from go.mod and go.sum alone, before the
	// sources are copied, so a code change keeps that layer.
	copied := false
	for _, in := range build.Instr {
		if in.Cmd == "COPY" && !copied {
			_, srcs, _ := copyArgs(in)
			if !slices.Equal(srcs, []string{"go.mod", "go.sum"}) {
				t.Errorf("Dockerfile:%d: the first COPY should be go.mod go.sum, got %v", in.Line, srcs)
			}
			copied = true
		}
		if in.Cmd == "RUN" && strings.Contains(in.Args, "go mod download") {
			break
		}
	}
}

func TestDockerfileRuntimeStage(t *testing.T) {
	_, stages := dockerfile(t)
	rt := stageNamed(stages, martImageTarget)
	if rt == nil {
		t.Fatalf("no stage named %q (compose builds that target)", martImageTarget)
	}
	if !strings.HasPrefix(rt.From, "gcr.io/distroless/static") && rt.From != "scratch" {
		t.Errorf("runtime stage FROM %s, want distroless static or scratch", rt.From)
	}
	users := rt.all("USER")
	if len(users) == 0 {
		t.Error("runtime stage sets no USER")
	} else if u := strings.SplitN(users[len(users)-1].Args, ":", 2)[0]; u == "root" || u == "0" {
		t.Errorf("runtime stage runs as %s", u)
	}
	checkRuntimeBinary(t, stages, rt)
	checkRuntimeHealthcheck(t, rt)
	checkRuntimeExposes(t, rt)
	envs := checkRuntimeEnv(t, rt)
	checkRuntimeSchemaFiles(t, rt, envs)
}

// checkRuntimeBinary checks that the binary is built to the path the
// runtime stage copies, and run from where compose's healthchecks expect
// it.
func checkRuntimeBinary(t *testing.T, stages []*stage, rt *stage) {
	t.Helper()
	var binary string
	for _, in := range rt.all("COPY") {
		flags, srcs, dst := copyArgs(in)
		if from, ok := flags["from"]; ok {
			src := stageNamed(stages, from)
			if src == nil {
				t.Errorf("Dockerfile:%d: COPY --from=%s: no such stage", in.Line, from)
				continue
			}
			for _, run := range src.all("RUN") {
				if strings.Contains(run.Args, "go build") && !strings.Contains(run.Args, "-o "+srcs[0]) {
					t.Errorf("Dockerfile:%d: copies %s, but the build writes elsewhere", in.Line, srcs[0])
				}
			}
			binary = dst
		}
	}
	if binary != martBinary {
		t.Errorf("the binary is copied to %q, want %s", binary, martBinary)
	}
	if eps := rt.all("ENTRYPOINT"); len(eps) == 0 || execForm(t, eps[0], eps[0].Args)[0] != martBinary {
		t.Errorf("ENTRYPOINT should run %s", martBinary)
	}
}

// checkRuntimeHealthcheck checks that the image checks its health with
// the binary itself (there is no shell nor curl), as its default command
// runs.
func checkRuntimeHealthcheck(t *testing.T, rt *stage) {
	t.Helper()
	hcs := rt.all("HEALTHCHECK")
	if len(hcs) != 1 {
		t.Fatalf("runtime stage has %d HEALTHCHECKs, want 1", len(hcs))
	}
	_, cmd, ok := strings.Cut(hcs[0].Args, "CMD ")
	if !ok {
		t.Fatalf("Dockerfile:%d: HEALTHCHECK without CMD", hcs[0].Line)
	}
	// The image's default command runs every target; the router, which
	// listens last, answers on its default port once all are up.
	_, routerPort := hostPort(t, "router default address", knownVars()["MART_ROUTER_ADDR"].Default)
	want := []string{martBinary, "healthcheck", "http://127.0.0.1:" + strconv.Itoa(routerPort) + "/readyz"}
	if hc := execForm(t, hcs[0], cmd); !slices.Equal(hc, want) {
		t.Errorf("Dockerfile:%d: HEALTHCHECK runs %q, want %q", hcs[0].Line, hc, want)
	}
	if cmds := rt.all("CMD"); len(cmds) == 0 || !slices.Equal(execForm(t, cmds[0], cmds[0].Args), []string{"serve"}) {
		t.Error(`the image's CMD should be ["serve"] (every target), which the HEALTHCHECK is written for`)
	}
}

// checkRuntimeExposes checks that EXPOSE covers the router and every
// service.
func checkRuntimeExposes(t *testing.T, rt *stage) {
	t.Helper()
	exposed := map[int]bool{}
	for _, in := range rt.all("EXPOSE") {
		for _, f := range strings.Fields(in.Args) {
			f, _, _ = strings.Cut(f, "/")
			lo, hi, _ := strings.Cut(f, "-")
			a, err1 := strconv.Atoi(lo)
			b, err2 := strconv.Atoi(hi)
			if hi == "" {
				b, err2 = a, nil
			}
			if err1 != nil || err2 != nil {
				t.Errorf("Dockerfile:%d: EXPOSE %s", in.Line, f)
			}
			for p := a; p <= b; p++ {
				exposed[p] = true
			}
		}
	}
	for _, want := range append([]int{4000}, servicePorts()...) {
		if !exposed[want] {
			t.Errorf("port %d is not EXPOSEd", want)
		}
	}
}

// checkRuntimeEnv checks that the stage's ENV sets only mart's variables,
// addresses on every interface at the default ports, and returns them.
func checkRuntimeEnv(t *testing.T, rt *stage) map[string]string {
	t.Helper()
	known := knownVars()
	envs := map[string]string{}
	for _, in := range rt.all("ENV") {
		for _, kv := range strings.Fields(in.Args) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				t.Errorf("Dockerfile:%d: ENV %s: want NAME=value", in.Line, kv)
				continue
			}
			if _, ok := known[k]; !ok {
				t.Errorf("Dockerfile:%d: ENV %s is not a variable mart declares (system.Vars)", in.Line, k)
			}
			envs[k] = v
		}
	}
	for _, s := range system.Services() {
		k := "MART_" + strings.ToUpper(s.Name) + "_ADDR"
		if v, ok := envs[k]; ok && v != "0.0.0.0:"+strconv.Itoa(s.Port) {
			t.Errorf("ENV %s=%s, want 0.0.0.0:%d", k, v, s.Port)
		}
	}
	return envs
}

// checkRuntimeSchemaFiles checks that the files the router composes from
// are where supergraph.yaml (at MART_SUPERGRAPH_CONFIG of envs) expects
// them: copied under WORKDIR at their repository paths.
func checkRuntimeSchemaFiles(t *testing.T, rt *stage, envs map[string]string) {
	t.Helper()
	workdirs := rt.all("WORKDIR")
	if len(workdirs) == 0 {
		t.Fatal("runtime stage has no WORKDIR")
	}
	workdir := workdirs[len(workdirs)-1].Args
	inImage := map[string]bool{}
	for _, in := range rt.all("COPY") {
		flags, srcs, dst := copyArgs(in)
		if _, ok := flags["from"]; ok || len(srcs) != 1 {
			continue
		}
		if !path.IsAbs(dst) {
			dst = path.Join(workdir, dst)
		}
		inImage[path.Clean(dst)] = true
	}
	cfgPath := envs["MART_SUPERGRAPH_CONFIG"]
	if cfgPath == "" {
		cfgPath = path.Join(workdir, "supergraph.yaml")
	}
	if !inImage[cfgPath] {
		t.Errorf("the image has no %s (MART_SUPERGRAPH_CONFIG)", cfgPath)
	}
	subgraphs, err := router.LoadSupergraphConfig(readPath(t, "supergraph.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, sg := range subgraphs {
		rel, err := filepath.Rel(root(t), sg.SchemaFile)
		if err != nil {
			t.Fatal(err)
		}
		if want := path.Join(path.Dir(cfgPath), filepath.ToSlash(rel)); !inImage[want] {
			t.Errorf("subgraph %s: the image has no %s, which the router composes at start", sg.Name, want)
		}
	}
}

func TestDockerfileCopiesWhatExists(t *testing.T) {
	_, stages := dockerfile(t)
	ignore := readDockerignore(t)
	for _, st := range stages {
		for _, in := range st.all("COPY") {
			flags, srcs, _ := copyArgs(in)
			if _, ok := flags["from"]; ok {
				continue
			}
			for _, src := range srcs {
				if src == "." {
					continue
				}
				matches, _ := filepath.Glob(filepath.Join(root(t), src))
				if len(matches) == 0 {
					t.Errorf("Dockerfile:%d: COPY %s: no such file", in.Line, src)
				}
				if dockerignored(ignore, src) {
					t.Errorf("Dockerfile:%d: COPY %s, which .dockerignore leaves out of the context", in.Line, src)
				}
			}
		}
	}
	// The build needs the sources, the embedded migrations and playground.
	for _, need := range []string{"go.mod", "go.sum", "cmd/mart/main.go", "migrations/embed.go", "router/router.go", "system/system.go"} {
		if dockerignored(ignore, need) {
			t.Errorf(".dockerignore leaves out %s, which the build needs", need)
		}
	}
	if _, err := os.Stat(filepath.Join(root(t), "router/playground/dist")); err == nil && dockerignored(ignore, "router/playground/dist/index.html") {
		t.Error(".dockerignore leaves out the embedded playground")
	}
}

func TestComposeBuildsDockerfileStages(t *testing.T) {
	_, stages := dockerfile(t)
	p := project(t)
	for name, s := range p.Services {
		if s.Build == nil {
			continue
		}
		df := s.Build.Dockerfile
		if df == "" {
			df = "Dockerfile"
		}
		if !filepath.IsAbs(df) {
			df = filepath.Join(s.Build.Context, df)
		}
		if df != filepath.Join(root(t), "Dockerfile") {
			t.Errorf("%s builds %s, want the repository's Dockerfile", name, df)
		}
		if s.Build.Target == "" || stageNamed(stages, s.Build.Target) == nil {
			t.Errorf("%s builds target %q, which is no stage of the Dockerfile", name, s.Build.Target)
		}
		for arg := range s.Build.Args {
			if !strings.Contains(readFile(t, "Dockerfile"), "ARG "+arg) {
				t.Errorf("%s passes build arg %s, which the Dockerfile does not declare", name, arg)
			}
		}
	}
}

func TestMartHasTheHealthcheckCommand(t *testing.T) {
	// Compose and the image run `mart healthcheck URL`; cmd/mart must have it.
	if !strings.Contains(readFile(t, "cmd/mart/main.go"), `case "healthcheck":`) {
		t.Error("cmd/mart has no healthcheck command, which the Dockerfile and compose.yaml run")
	}
}

func servicePorts() []int {
	var out []int
	for _, s := range system.Services() {
		out = append(out, s.Port)
	}
	return out
}
