package deploy_test

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/onlinemart/mart/internal/envvar"
	"github.com/onlinemart/mart/system"
)

// root is the repository root, where the deliverables live.
func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("repository root not found from %s: %v", dir, err)
	}
	return dir
}

func readFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// loadCompose loads a compose file offline, the way `docker compose config`
// would, with env as the only interpolation environment (no OS environment,
// no .env from the working tree). env_file entries are kept as paths, not
// read: the real .env is the user's and may not exist.
func loadCompose(t *testing.T, file string, env map[string]string) (*types.Project, error) {
	t.Helper()
	var pairs []string
	for k, v := range env {
		pairs = append(pairs, k+"="+v)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root(t), file)},
		cli.WithName("mart-test"),
		cli.WithWorkingDirectory(filepath.Join(root(t), filepath.Dir(file))),
		cli.WithEnv(pairs),
		cli.WithoutEnvironmentResolution,
	)
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(context.Background())
}

// envExample parses .env.example: the variables it sets, and those it only
// documents in a commented "# NAME=value" line.
type envExample struct {
	Set        map[string]string
	Documented map[string]bool // set or commented
}

var envLine = regexp.MustCompile(`^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$`)

func readEnvExample(t *testing.T) envExample {
	t.Helper()
	e := envExample{Set: map[string]string{}, Documented: map[string]bool{}}
	sc := bufio.NewScanner(strings.NewReader(readFile(t, ".env.example")))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		m := envLine.FindStringSubmatch(line)
		if m == nil {
			if line != "" && !strings.HasPrefix(line, "#") {
				t.Errorf(".env.example:%d: not NAME=value: %q", n, line)
			}
			continue
		}
		e.Documented[m[2]] = true
		if m[1] == "" {
			if _, dup := e.Set[m[2]]; dup {
				t.Errorf(".env.example:%d: %s set twice", n, m[2])
			}
			e.Set[m[2]] = m[3]
		}
	}
	return e
}

// exampleEnv is the environment of a user who copied .env.example to .env
// and filled in the values it leaves empty.
func exampleEnv(t *testing.T) map[string]string {
	env := maps.Clone(readEnvExample(t).Set)
	for k, v := range env {
		if v == "" {
			env[k] = "filled-in-" + strings.ToLower(k)
		}
	}
	return env
}

// knownVars is every variable mart declares (system.Vars).
func knownVars() map[string]envvar.Var {
	known := map[string]envvar.Var{}
	for _, v := range system.Vars() {
		known[v.Name] = v
	}
	return known
}

func env(s types.ServiceConfig, name string) string {
	if v, ok := s.Environment[name]; ok && v != nil {
		return *v
	}
	return ""
}

// composeVarRefs lists the ${NAME…} and $NAME references of a compose file
// (not $$-escaped ones, which the container's shell expands).
func composeVarRefs(text string) []string {
	var out []string
	re := regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)|\$([A-Za-z_][A-Za-z0-9_]*)`)
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, m := range re.FindAllStringSubmatch(line, -1) {
			if name := m[1] + m[2]; name != "" && !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
	}
	return out
}

// hostPort splits "host:port" and parses the port.
func hostPort(t *testing.T, what, hp string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(hp)
	if err != nil {
		t.Errorf("%s: %q is not host:port: %v", what, hp, err)
		return "", 0
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Errorf("%s: port of %q: %v", what, hp, err)
	}
	return h, n
}

func parseURL(t *testing.T, what, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		t.Errorf("%s: %q is not an absolute URL (%v)", what, raw, err)
		return &url.URL{}
	}
	return u
}

func urlPort(u *url.URL) int {
	if p := u.Port(); p != "" {
		n, _ := strconv.Atoi(p)
		return n
	}
	if u.Scheme == "https" {
		return 443
	}
	return 80
}

// ---- Dockerfile ------------------------------------------------------------

type instruction struct {
	Line int
	Cmd  string // upper case: FROM, RUN, COPY, …
	Args string // the rest, continuation lines joined
}

type stage struct {
	Name  string
	From  string // base image, build args expanded
	Instr []instruction
}

// parseDockerfile splits a Dockerfile into stages of instructions: comments
// dropped, line continuations joined, ARGs before the first FROM expanded in
// FROM lines. Enough for the checks here, not a full parser.
func parseDockerfile(t *testing.T, text string) (args map[string]string, stages []*stage) {
	t.Helper()
	args = map[string]string{}
	var instrs []instruction
	var cur strings.Builder
	start := 0
	for n, raw := range strings.Split(text, "\n") {
		line := strings.TrimSpace(raw)
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if cur.Len() == 0 {
			start = n + 1
		}
		if s, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(line)
		cmd, rest, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		instrs = append(instrs, instruction{Line: start, Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(rest)})
		cur.Reset()
	}
	for _, in := range instrs {
		switch {
		case in.Cmd == "ARG" && len(stages) == 0:
			name, def, _ := strings.Cut(in.Args, "=")
			args[name] = def
		case in.Cmd == "FROM":
			f := strings.Fields(in.Args)
			f = slices.DeleteFunc(f, func(s string) bool { return strings.HasPrefix(s, "--") })
			st := &stage{From: os.Expand(f[0], func(k string) string { return args[k] })}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.Name = f[2]
			}
			stages = append(stages, st)
		case len(stages) == 0:
			t.Errorf("Dockerfile:%d: %s before the first FROM", in.Line, in.Cmd)
		default:
			stages[len(stages)-1].Instr = append(stages[len(stages)-1].Instr, in)
		}
	}
	return args, stages
}

func (s *stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.Instr {
		if in.Cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// copyArgs splits a COPY's flags from its sources and destination (shell
// form; the exec form is not used here).
func copyArgs(in instruction) (flags map[string]string, srcs []string, dst string) {
	flags = map[string]string{}
	f := strings.Fields(in.Args)
	for len(f) > 0 && strings.HasPrefix(f[0], "--") {
		k, v, _ := strings.Cut(strings.TrimPrefix(f[0], "--"), "=")
		flags[k] = v
		f = f[1:]
	}
	if len(f) < 2 {
		return flags, nil, ""
	}
	return flags, f[:len(f)-1], f[len(f)-1]
}

// dockerignored reports whether the build context leaves rel out, for the
// pattern forms .dockerignore uses here: path globs, "**/" prefixes and "!"
// exceptions; a pattern matching a parent folder excludes everything in it.
func dockerignored(patterns []string, rel string) bool {
	rel = path.Clean(filepath.ToSlash(rel))
	ignored := false
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		p = path.Clean(strings.TrimPrefix(strings.TrimPrefix(p, "!"), "/"))
		anyDepth := strings.HasPrefix(p, "**/")
		p = strings.TrimPrefix(p, "**/")
		parts := strings.Split(rel, "/")
		for i := range parts {
			for j := i + 1; j <= len(parts); j++ {
				if i > 0 && !anyDepth {
					break
				}
				if ok, _ := path.Match(p, strings.Join(parts[i:j], "/")); ok {
					ignored = !neg
				}
			}
		}
	}
	return ignored
}

func readDockerignore(t *testing.T) []string {
	var out []string
	for _, line := range strings.Split(readFile(t, ".dockerignore"), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out
}

// ports formats published ports as HOST_IP:PUBLISHED->TARGET.
func ports(ps []types.ServicePortConfig) []string {
	var out []string
	for _, p := range ps {
		out = append(out, fmt.Sprintf("%s:%s->%d", p.HostIP, p.Published, p.Target))
	}
	return out
}
