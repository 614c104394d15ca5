package deploy_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/onlinemart/mart/system"
)

type devcontainer struct {
	Name              string   `json:"name"`
	DockerComposeFile string   `json:"dockerComposeFile"`
	Service           string   `json:"service"`
	RunServices       []string `json:"runServices"`
	WorkspaceFolder   string   `json:"workspaceFolder"`
	RemoteUser        string   `json:"remoteUser"`
	ForwardPorts      []int    `json:"forwardPorts"`
	PostCreateCommand string   `json:"postCreateCommand"`
	Customizations    struct {
		VSCode struct {
			Extensions []string `json:"extensions"`
		} `json:"vscode"`
	} `json:"customizations"`
}

func TestDevcontainer(t *testing.T) {
	var dc devcontainer
	dec := json.NewDecoder(strings.NewReader(readFile(t, ".devcontainer/devcontainer.json")))
	if err := dec.Decode(&dc); err != nil {
		t.Fatalf("devcontainer.json: %v", err)
	}
	p, err := loadCompose(t, filepath.Join(".devcontainer", dc.DockerComposeFile), nil)
	if err != nil {
		t.Fatalf("devcontainer compose file: %v", err)
	}
	dev, ok := p.Services[dc.Service]
	if !ok {
		t.Fatalf("devcontainer.json: service %q is not in %s", dc.Service, dc.DockerComposeFile)
	}
	for _, s := range dc.RunServices {
		if _, ok := p.Services[s]; !ok {
			t.Errorf("devcontainer.json: runServices names %q, not a service", s)
		}
	}
	if !slices.ContainsFunc(dev.Volumes, func(v types.ServiceVolumeConfig) bool {
		return v.Type == types.VolumeTypeBind && v.Source == root(t) && v.Target == dc.WorkspaceFolder
	}) {
		t.Errorf("the workspace %s is not the repository mounted into %s", dc.WorkspaceFolder, dc.Service)
	}
	checkDevImage(t, dc, dev)
	checkDevEnvironment(t, dc, p, dev)
	checkDevEditor(t, dc)
}

// checkDevImage checks that the dev container is built with the Go of
// go.mod and protoc.
func checkDevImage(t *testing.T, dc devcontainer, dev types.ServiceConfig) {
	t.Helper()
	if dev.Build == nil {
		t.Fatalf("%s: want a build of .devcontainer/Dockerfile", dc.Service)
	}
	args, stages := parseDockerfile(t, readFile(t, filepath.Join(".devcontainer", dev.Build.Dockerfile)))
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(readFile(t, "go.mod"))
	if len(stages) == 0 || goVersion == nil || !strings.HasPrefix(stages[len(stages)-1].From, "golang:"+goVersion[1]) {
		t.Errorf("dev image FROM %v (args %v), want golang:%s", stages, args, goVersion)
	}
	dockerfile := readFile(t, filepath.Join(".devcontainer", dev.Build.Dockerfile))
	if !strings.Contains(dockerfile, "protobuf-compiler") {
		t.Error("the dev image lacks protoc (make generate)")
	}
}

// checkDevEnvironment checks what make test and make run need: Postgres
// at DATABASE_URL (a service of this compose file), Kafka embedded
// (KAFKA_BROKERS unset).
func checkDevEnvironment(t *testing.T, dc devcontainer, p *types.Project, dev types.ServiceConfig) {
	t.Helper()
	known := knownVars()
	for k := range dev.Environment {
		if _, ok := known[k]; !ok {
			t.Errorf("%s: environment variable %s is not a variable mart declares (system.Vars)", dc.Service, k)
		}
	}
	u := parseURL(t, "DATABASE_URL", env(dev, "DATABASE_URL"))
	pg, ok := p.Services[u.Hostname()]
	if !ok || !strings.HasPrefix(pg.Image, "postgres:") {
		t.Errorf("DATABASE_URL %s does not point at a postgres service", u)
	} else {
		if env(pg, "POSTGRES_HOST_AUTH_METHOD") != "trust" && env(pg, "POSTGRES_PASSWORD") == "" {
			t.Error("the dev postgres has neither trust auth nor a password")
		}
		if dev.DependsOn[u.Hostname()].Condition != types.ServiceConditionHealthy || pg.HealthCheck == nil {
			t.Errorf("%s must wait for a healthy %s", dc.Service, u.Hostname())
		}
	}
	if v := env(dev, "KAFKA_BROKERS"); v != "" {
		t.Errorf("KAFKA_BROKERS=%q in the dev container; leave it unset so mart embeds its broker", v)
	}
	if _, ok := p.Services["kafka"]; !ok {
		t.Error("no kafka service in the dev container's compose file")
	}
}

// checkDevEditor checks the ports forwarded, the editor's extensions and
// the script run after creation.
func checkDevEditor(t *testing.T, dc devcontainer) {
	t.Helper()
	for _, target := range system.Targets {
		if !slices.Contains(dc.ForwardPorts, target.Port) {
			t.Errorf("port %d (%s) is not forwarded", target.Port, target.Name)
		}
	}
	for _, ext := range []string{"golang.go", "GraphQL.vscode-graphql"} {
		if !slices.Contains(dc.Customizations.VSCode.Extensions, ext) {
			t.Errorf("extension %s missing", ext)
		}
	}
	if !slices.ContainsFunc(dc.Customizations.VSCode.Extensions, func(e string) bool {
		return strings.Contains(e, "proto") || strings.Contains(e, "buf")
	}) {
		t.Error("no protobuf extension")
	}
	// postCreateCommand runs a script of the repository.
	script := regexp.MustCompile(`\.devcontainer/[\w.-]+\.sh`).FindString(dc.PostCreateCommand)
	if script == "" {
		t.Fatalf("postCreateCommand %q runs no .devcontainer script", dc.PostCreateCommand)
	}
	body, err := os.ReadFile(filepath.Join(root(t), script))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"protoc", "go mod download"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("%s does not prepare %s", script, want)
		}
	}
}
