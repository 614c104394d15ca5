package deploy_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/onlinemart/mart/router"
	"github.com/onlinemart/mart/system"
)

const martImageTarget = "runtime" // the Dockerfile stage every mart container runs

// project loads compose.yaml as a user would after `cp .env.example .env`
// and filling in the blanks.
func project(t *testing.T) *types.Project {
	t.Helper()
	p, err := loadCompose(t, "compose.yaml", exampleEnv(t))
	if err != nil {
		t.Fatalf("compose.yaml does not load: %v", err)
	}
	return p
}

// martServices are the containers running the mart image, by target.
func martServices(t *testing.T, p *types.Project) map[string]types.ServiceConfig {
	t.Helper()
	out := map[string]types.ServiceConfig{}
	for name, s := range p.Services {
		if s.Build == nil || s.Build.Target != martImageTarget {
			continue
		}
		target := env(s, "MART_TARGETS")
		if target != name {
			t.Errorf("service %s: MART_TARGETS=%q, want its own name (one target per container)", name, target)
		}
		out[target] = s
	}
	return out
}

func TestComposeNeedsTheSecretsFromEnvFile(t *testing.T) {
	// With .env.example copied as is, the secrets are blank: compose must
	// refuse to start rather than run with an empty password.
	_, err := loadCompose(t, "compose.yaml", readEnvExample(t).Set)
	if err == nil {
		t.Fatal("compose.yaml loads with the blank secrets of .env.example; want POSTGRES_PASSWORD and MART_ADMIN_PASSWORD required")
	}
	for _, name := range []string{"POSTGRES_PASSWORD", "MART_ADMIN_PASSWORD"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("missing-secret error does not name %s: %v", name, err)
		}
	}
}

func TestComposeServicesAndDependencies(t *testing.T) {
	p := project(t)
	for name, s := range p.Services {
		if s.Image == "" && s.Build == nil {
			t.Errorf("service %s has neither image nor build", name)
		}
		for dep, d := range s.DependsOn {
			target, ok := p.Services[dep]
			if !ok {
				t.Errorf("service %s depends on %s, which does not exist", name, dep)
				continue
			}
			switch d.Condition {
			case types.ServiceConditionHealthy:
				if target.HealthCheck == nil || target.HealthCheck.Disable || len(target.HealthCheck.Test) == 0 {
					t.Errorf("service %s waits for %s to be healthy, which has no healthcheck", name, dep)
				}
			case types.ServiceConditionStarted, types.ServiceConditionCompletedSuccessfully:
			default:
				t.Errorf("service %s: depends_on %s: unexpected condition %q", name, dep, d.Condition)
			}
		}
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeVolume {
				if _, ok := p.Volumes[v.Source]; !ok {
					t.Errorf("service %s mounts volume %q, not declared under volumes:", name, v.Source)
				}
			}
		}
	}
	if _, err := p.GetServices(); err != nil {
		t.Error(err)
	}
	if cycle := dependencyCycle(p); cycle != nil {
		t.Errorf("depends_on cycle: %v", cycle)
	}
}

func dependencyCycle(p *types.Project) []string {
	state := map[string]int{} // 1 visiting, 2 done
	var stack []string
	var visit func(string) []string
	visit = func(n string) []string {
		switch state[n] {
		case 1:
			return append(slices.Clone(stack), n)
		case 2:
			return nil
		}
		state[n] = 1
		stack = append(stack, n)
		for dep := range p.Services[n].DependsOn {
			if c := visit(dep); c != nil {
				return c
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = 2
		return nil
	}
	for n := range p.Services {
		if c := visit(n); c != nil {
			return c
		}
	}
	return nil
}

func TestComposeRunsEveryTargetOfTheImage(t *testing.T) {
	p := project(t)
	mart := martServices(t, p)
	want := append(system.ServiceNames(), "router")
	for _, target := range want {
		if _, ok := mart[target]; !ok {
			t.Errorf("no container runs target %s", target)
		}
	}
	var image string
	for target, s := range mart {
		if image == "" {
			image = s.Image
		}
		if s.Image != image {
			t.Errorf("%s runs image %q, others %q: every target runs the same image", target, s.Image, image)
		}
		checkTargetContainer(t, target, s)
		checkTargetEnvironment(t, target, s)
	}
}

// checkTargetContainer checks how the container of target runs the image:
// built from the repository, serving, publishing nothing, configured by
// the project's .env.
func checkTargetContainer(t *testing.T, target string, s types.ServiceConfig) {
	t.Helper()
	if s.Build.Context != root(t) {
		t.Errorf("%s: build context %q, want the repository root", target, s.Build.Context)
	}
	if !slices.Equal([]string(s.Command), []string{"serve"}) {
		t.Errorf("%s: command %q, want [serve] (the target comes from MART_TARGETS, which the image healthcheck reads too)", target, s.Command)
	}
	if len(s.Ports) > 0 {
		t.Errorf("%s publishes %v: only Kong is reachable from the host", target, ports(s.Ports))
	}
	if len(s.EnvFiles) != 1 || !strings.HasSuffix(s.EnvFiles[0].Path, "/.env") {
		t.Errorf("%s: env_file %v, want the project's .env", target, s.EnvFiles)
	}
}

// checkTargetEnvironment checks that every variable of the container of
// target is one mart reads, and that together they make a valid
// configuration for this one target, listening on 0.0.0.0 on the port its
// healthcheck asks.
func checkTargetEnvironment(t *testing.T, target string, s types.ServiceConfig) {
	t.Helper()
	known := knownVars()
	for k := range s.Environment {
		if _, ok := known[k]; !ok {
			t.Errorf("%s: environment variable %s is not a variable mart declares (system.Vars)", target, k)
		}
	}
	cfg, err := system.LoadFrom(func(k string) (string, bool) {
		v, ok := s.Environment[k]
		if !ok || v == nil {
			return "", false
		}
		return *v, true
	})
	if err != nil {
		t.Errorf("%s: %v", target, err)
		return
	}
	if !slices.Equal(cfg.Targets, []string{target}) {
		t.Errorf("%s: runs targets %v", target, cfg.Targets)
	}
	addr := cfg.Router.Addr
	if target != "router" {
		addr = cfg.Services[target].Addr
	}
	host, port := hostPort(t, target+" listen address", addr)
	if host != "0.0.0.0" {
		t.Errorf("%s listens on %q: in a container it must listen on 0.0.0.0", target, addr)
	}
	checkTargetHealthcheck(t, target, s.HealthCheck, port)
}

// checkTargetHealthcheck checks that the healthcheck of target asks its
// own port for readiness, with the binary (the image has no shell).
func checkTargetHealthcheck(t *testing.T, target string, hc *types.HealthCheckConfig, port int) {
	t.Helper()
	if hc == nil || len(hc.Test) != 4 {
		t.Errorf("%s: healthcheck %v, want [CMD /usr/local/bin/mart healthcheck URL]", target, hc)
		return
	}
	if hc.Test[0] != "CMD" || hc.Test[1] != martBinary || hc.Test[2] != "healthcheck" {
		t.Errorf("%s: healthcheck %q, want [CMD %s healthcheck URL] (the image has no shell)", target, hc.Test, martBinary)
	}
	u := parseURL(t, target+" healthcheck", hc.Test[len(hc.Test)-1])
	if urlPort(u) != port || u.Path != "/readyz" || u.Hostname() != "127.0.0.1" {
		t.Errorf("%s: healthcheck GETs %s, want http://127.0.0.1:%d/readyz", target, u, port)
	}
}

func TestComposeGivesEachSubgraphItsOwnPostgres(t *testing.T) {
	p := project(t)
	mart := martServices(t, p)
	owner := map[string]string{} // postgres service → subgraph
	for _, svc := range system.Services() {
		s, ok := mart[svc.Name]
		if !ok {
			continue // reported by TestComposeRunsEveryTargetOfTheImage
		}
		checkOwnPostgres(t, p, svc.Name, s, owner)
	}
	// Named volumes are not shared between the servers.
	used := map[string]string{}
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeVolume {
				continue
			}
			if other, ok := used[v.Source]; ok {
				t.Errorf("volume %s is mounted by both %s and %s", v.Source, other, name)
			}
			used[v.Source] = name
		}
	}
}

// checkOwnPostgres checks that the DATABASE_URL of service s names a
// Postgres of the project that no other service has (owner, which it
// adds to), with the database and credentials that server is given, and
// that s waits for it.
func checkOwnPostgres(t *testing.T, p *types.Project, name string, s types.ServiceConfig, owner map[string]string) {
	t.Helper()
	up := strings.ToUpper(name)
	u := parseURL(t, name+" DATABASE_URL", env(s, "DATABASE_URL"))
	pgName := u.Hostname()
	pg, ok := p.Services[pgName]
	if !ok {
		t.Errorf("%s: DATABASE_URL names host %q, not a compose service", name, pgName)
		return
	}
	if !strings.HasPrefix(pg.Image, "postgres:") {
		t.Errorf("%s: its database %s runs %q, want a postgres image", name, pgName, pg.Image)
	}
	if other, taken := owner[pgName]; taken {
		t.Errorf("%s and %s share the Postgres %s: one server per service", other, name, pgName)
	}
	owner[pgName] = name
	if d := s.DependsOn[pgName]; d.Condition != types.ServiceConditionHealthy {
		t.Errorf("%s must wait for %s to be healthy (depends_on condition %q)", name, pgName, d.Condition)
	}
	db := env(s, "MART_"+up+"_DATABASE")
	if db == "" || db != env(pg, "POSTGRES_DB") || u.Path != "/"+db {
		t.Errorf("%s: MART_%s_DATABASE=%q, DATABASE_URL path %q, %s's POSTGRES_DB=%q: want one name", name, up, db, u.Path, pgName, env(pg, "POSTGRES_DB"))
	}
	pw, _ := u.User.Password()
	if u.User.Username() != env(pg, "POSTGRES_USER") || pw != env(pg, "POSTGRES_PASSWORD") || pw == "" {
		t.Errorf("%s: DATABASE_URL credentials do not match %s's POSTGRES_USER/POSTGRES_PASSWORD", name, pgName)
	}
	if _, port := hostPort(t, "DATABASE_URL", u.Host); port != 5432 {
		t.Errorf("%s: DATABASE_URL port %d, want 5432", name, port)
	}
	checkPostgresServer(t, pgName, pg)
}

// checkPostgresServer checks that a service's Postgres says when it is
// ready, keeps its data in a named volume and stays inside the network.
func checkPostgresServer(t *testing.T, pgName string, pg types.ServiceConfig) {
	t.Helper()
	if pg.HealthCheck == nil || !strings.Contains(strings.Join(pg.HealthCheck.Test, " "), "pg_isready") {
		t.Errorf("%s: healthcheck %v, want pg_isready", pgName, pg.HealthCheck)
	}
	var data string
	for _, v := range pg.Volumes {
		if v.Target == "/var/lib/postgresql/data" && v.Type == types.VolumeTypeVolume {
			data = v.Source
		}
	}
	if data == "" {
		t.Errorf("%s keeps its data in no named volume at /var/lib/postgresql/data", pgName)
	}
	if len(pg.Ports) > 0 {
		t.Errorf("%s publishes %v: databases stay inside the compose network", pgName, ports(pg.Ports))
	}
}

func TestComposeWiresKafkaMailAndTokens(t *testing.T) {
	p := project(t)
	mart := martServices(t, p)
	kafka, ok := p.Services["kafka"]
	if !ok {
		t.Fatal("no kafka service")
	}
	kenv := func(k string) string { return env(kafka, k) }
	if kenv("KAFKA_PROCESS_ROLES") != "broker,controller" {
		t.Errorf("kafka: KAFKA_PROCESS_ROLES=%q, want broker,controller (KRaft, one node)", kenv("KAFKA_PROCESS_ROLES"))
	}
	if !strings.Contains(kenv("KAFKA_ADVERTISED_LISTENERS"), "PLAINTEXT://kafka:9092") {
		t.Errorf("kafka: advertised listeners %q do not include PLAINTEXT://kafka:9092 for the services", kenv("KAFKA_ADVERTISED_LISTENERS"))
	}
	if kafka.HealthCheck == nil {
		t.Error("kafka has no healthcheck")
	}
	for _, svc := range system.Services() {
		s, ok := mart[svc.Name]
		if !ok {
			continue
		}
		if env(s, "KAFKA_BROKERS") != "kafka:9092" {
			t.Errorf("%s: KAFKA_BROKERS=%q, want kafka:9092 (empty would start an embedded broker per container)", svc.Name, env(s, "KAFKA_BROKERS"))
		}
		if s.DependsOn["kafka"].Condition != types.ServiceConditionHealthy {
			t.Errorf("%s must wait for kafka to be healthy", svc.Name)
		}
	}
	for target, s := range mart {
		jwks := parseURL(t, target+" MART_JWKS_URL", env(s, "MART_JWKS_URL"))
		user := mart["user"]
		_, userPort := hostPort(t, "user address", env(user, "MART_USER_ADDR"))
		if jwks.Hostname() != "user" || urlPort(jwks) != userPort || jwks.Path != "/.well-known/jwks.json" {
			t.Errorf("%s: MART_JWKS_URL=%s, want http://user:%d/.well-known/jwks.json", target, jwks, userPort)
		}
	}
	if u := mart["user"]; env(u, "MART_ADMIN_EMAIL") == "" || env(u, "MART_ADMIN_PASSWORD") == "" {
		t.Error("user: MART_ADMIN_EMAIL and MART_ADMIN_PASSWORD must come from .env")
	}

	n := mart["notification"]
	host, port := hostPort(t, "MART_SMTP_ADDR", env(n, "MART_SMTP_ADDR"))
	if mp, ok := p.Services[host]; !ok || !strings.Contains(mp.Image, "mailpit") || port != 1025 {
		t.Errorf("notification: MART_SMTP_ADDR=%q, want mailpit's SMTP port 1025", env(n, "MART_SMTP_ADDR"))
	}
	if env(n, "MART_SMTP_STARTTLS") != "never" {
		t.Errorf("notification: MART_SMTP_STARTTLS=%q, want never (mailpit has no TLS)", env(n, "MART_SMTP_STARTTLS"))
	}
	if n.DependsOn[host].Condition != types.ServiceConditionHealthy {
		t.Errorf("notification must wait for %s to be healthy", host)
	}
}

func TestComposeRouterReachesTheSubgraphs(t *testing.T) {
	p := project(t)
	mart := martServices(t, p)
	rt, ok := mart["router"]
	if !ok {
		t.Fatal("no router container")
	}
	subgraphs, err := router.LoadSupergraphConfig(readPath(t, "supergraph.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	overrides := map[string]string{}
	for _, sg := range subgraphs {
		key := "MART_" + strings.ToUpper(sg.Name) + "_ROUTING_URL"
		raw := env(rt, key)
		if raw == "" {
			t.Errorf("router: %s unset: it would call %s, which is the router container itself", key, sg.RoutingURL)
			continue
		}
		overrides[sg.Name] = raw
		u := parseURL(t, key, raw)
		svc, ok := mart[u.Hostname()]
		if !ok || u.Hostname() != sg.Name {
			t.Errorf("router: %s=%s, want the host to be the %s service", key, raw, sg.Name)
			continue
		}
		_, port := hostPort(t, sg.Name+" address", env(svc, "MART_"+strings.ToUpper(sg.Name)+"_ADDR"))
		if urlPort(u) != port || u.Path != "/graphql" {
			t.Errorf("router: %s=%s, but %s listens on port %d at /graphql", key, raw, sg.Name, port)
		}
		if rt.DependsOn[sg.Name].Condition != types.ServiceConditionHealthy {
			t.Errorf("router must wait for %s to be healthy", sg.Name)
		}
	}
	for k := range rt.Environment {
		if name, ok := strings.CutSuffix(strings.TrimPrefix(k, "MART_"), "_ROUTING_URL"); ok {
			if _, known := overrides[strings.ToLower(name)]; !known {
				t.Errorf("router: %s names no subgraph of supergraph.yaml", k)
			}
		}
	}
	// What the router does at start with them: unknown names are an error.
	if _, err := router.LoadSupergraphConfig(readPath(t, "supergraph.yaml"), overrides); err != nil {
		t.Errorf("router start: %v", err)
	}
}

func TestComposePublishesOnlyKongAndDebugPorts(t *testing.T) {
	p := project(t)
	for name, s := range p.Services {
		for _, port := range s.Ports {
			switch {
			case name == "kong" && port.Target == 8000:
				if port.Published != "8000" {
					t.Errorf("kong: proxy published on %q, want host port 8000", port.Published)
				}
			case port.HostIP == "127.0.0.1":
				// debugging aids: mailpit UI, Kong status, Kafka for kcat
			default:
				t.Errorf("%s publishes %s:%s->%d on every interface; only Kong's proxy is public", name, port.HostIP, port.Published, port.Target)
			}
		}
	}
	mp := p.Services["mailpit"]
	if !slices.ContainsFunc(mp.Ports, func(p types.ServicePortConfig) bool { return p.Target == 8025 && p.Published == "8025" }) {
		t.Errorf("mailpit: UI not published on 8025 (%v)", ports(mp.Ports))
	}
}

func TestEnvExample(t *testing.T) {
	e := readEnvExample(t)
	known := knownVars()
	refs := composeVarRefs(readFile(t, "compose.yaml"))
	for name := range e.Documented {
		if _, ok := known[name]; !ok && !slices.Contains(refs, name) {
			t.Errorf(".env.example: %s is neither a mart variable (mart --help) nor used by compose.yaml", name)
		}
	}
	for _, name := range refs {
		if !e.Documented[name] {
			t.Errorf("compose.yaml uses ${%s}, which .env.example does not document", name)
		}
	}
	for name, v := range e.Set {
		secret := strings.Contains(name, "PASSWORD") || strings.Contains(name, "TOKEN") || strings.Contains(name, "SECRET")
		if secret && v != "" {
			t.Errorf(".env.example: %s has a value; secrets stay blank in the committed example", name)
		}
	}
	for _, name := range []string{"POSTGRES_PASSWORD", "MART_ADMIN_EMAIL", "MART_ADMIN_PASSWORD"} {
		if _, ok := e.Set[name]; !ok {
			t.Errorf(".env.example does not list %s", name)
		}
	}
}

func TestEnvFileStaysOutOfGitAndImage(t *testing.T) {
	if !dockerignored(readDockerignore(t), ".env") {
		t.Error(".dockerignore lets .env into the build context")
	}
	if dockerignored(readDockerignore(t), ".env.example") {
		t.Error(".dockerignore leaves out .env.example")
	}
	ignored := false
	for _, line := range strings.Split(readFile(t, ".gitignore"), "\n") {
		switch strings.TrimSpace(line) {
		case ".env", "/.env", ".env*", "/.env*":
			ignored = true
		}
	}
	if !ignored {
		t.Error(".gitignore does not list .env: the file with the passwords could be committed")
	}
}

// readPath is a repository file's absolute path.
func readPath(t *testing.T, rel string) string { return filepath.Join(root(t), rel) }
