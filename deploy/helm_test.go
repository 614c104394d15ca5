package deploy_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/onlinemart/mart/internal/envvar"
	"github.com/onlinemart/mart/system"
)

// The Helm chart (deploy/helm/mart) is checked with the helm pinned in
// tools/go.mod: `helm lint`, then `helm template` with the default values and
// a production-like values file, whose manifests are parsed and compared
// with what the binary expects (system.Vars). Building helm the first
// time takes minutes; -short skips these tests.

const chartDir = "deploy/helm/mart"

// kubeVersion is the Kubernetes version the chart is rendered for: a helm
// built with `go tool` (no release ldflags) assumes 1.20, older than the
// chart's kubeVersion (1.30+, for the preStop sleep action).
const kubeVersion = "1.31.0"

// secretVars hold credentials: a Deployment may only take them from a
// Secret (valueFrom.secretKeyRef), never as a literal value.
var secretVars = []string{"DATABASE_URL", "KAFKA_SASL_PASSWORD", "MART_SMTP_PASSWORD", "MART_SMS_TOKEN", "MART_ADMIN_PASSWORD"}

// fileVars name files that hold credentials: they must be mounted from a
// Secret.
var fileVars = []string{"MART_JWT_KEY_FILE", "KAFKA_TLS_CA_FILE"}

func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	if testing.Short() {
		t.Skip("helm checks skipped in -short mode")
	}
	dir := root(t)
	cmd := exec.Command("go", append([]string{"tool", "-modfile=" + filepath.Join(dir, "tools", "go.mod"), "helm"}, args...)...)
	cmd.Dir = dir
	home := filepath.Join(os.TempDir(), "mart-helm-test-home")
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// ---- the manifests, as far as the checks need them ------------------------------

type meta struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type object struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   meta   `yaml:"metadata"`
	raw        []byte
}

type envVar struct {
	Name      string  `yaml:"name"`
	Value     *string `yaml:"value"`
	ValueFrom *struct {
		SecretKeyRef *struct {
			Name string `yaml:"name"`
			Key  string `yaml:"key"`
		} `yaml:"secretKeyRef"`
	} `yaml:"valueFrom"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
	Exec          map[string]any `yaml:"exec"`
	PeriodSeconds int            `yaml:"periodSeconds"`
}

type container struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env            []envVar `yaml:"env"`
	StartupProbe   *probe   `yaml:"startupProbe"`
	LivenessProbe  *probe   `yaml:"livenessProbe"`
	ReadinessProbe *probe   `yaml:"readinessProbe"`
	Lifecycle      *struct {
		PreStop map[string]any `yaml:"preStop"`
	} `yaml:"lifecycle"`
	Resources struct {
		Requests map[string]any `yaml:"requests"`
		Limits   map[string]any `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext *struct {
		RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type podSpec struct {
	SecurityContext *struct {
		RunAsNonRoot *bool `yaml:"runAsNonRoot"`
		RunAsUser    *int  `yaml:"runAsUser"`
	} `yaml:"securityContext"`
	TerminationGracePeriodSeconds *int        `yaml:"terminationGracePeriodSeconds"`
	RestartPolicy                 string      `yaml:"restartPolicy"`
	Containers                    []container `yaml:"containers"`
	Volumes                       []struct {
		Name   string `yaml:"name"`
		Secret *struct {
			SecretName string `yaml:"secretName"`
		} `yaml:"secret"`
	} `yaml:"volumes"`
}

type podTemplate struct {
	Metadata meta    `yaml:"metadata"`
	Spec     podSpec `yaml:"spec"`
}

type deployment struct {
	Metadata meta `yaml:"metadata"`
	Spec     struct {
		Replicas *int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template podTemplate `yaml:"template"`
	} `yaml:"spec"`
}

type service struct {
	Metadata meta `yaml:"metadata"`
	Spec     struct {
		Type     string            `yaml:"type"`
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort any    `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type hpa struct {
	Metadata meta `yaml:"metadata"`
	Spec     struct {
		ScaleTargetRef struct {
			Kind string `yaml:"kind"`
			Name string `yaml:"name"`
		} `yaml:"scaleTargetRef"`
		MinReplicas int              `yaml:"minReplicas"`
		MaxReplicas int              `yaml:"maxReplicas"`
		Metrics     []map[string]any `yaml:"metrics"`
	} `yaml:"spec"`
}

type pdb struct {
	Metadata meta `yaml:"metadata"`
	Spec     struct {
		MinAvailable   any `yaml:"minAvailable"`
		MaxUnavailable any `yaml:"maxUnavailable"`
		Selector       struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
	} `yaml:"spec"`
}

type job struct {
	Metadata meta `yaml:"metadata"`
	Spec     struct {
		BackoffLimit *int        `yaml:"backoffLimit"`
		Template     podTemplate `yaml:"template"`
	} `yaml:"spec"`
}

type configMap struct {
	Metadata meta              `yaml:"metadata"`
	Data     map[string]string `yaml:"data"`
}

// manifests is one `helm template` output, indexed by kind and name.
type manifests struct {
	objects []object
}

func (m manifests) find(kind, name string) (object, bool) {
	for _, o := range m.objects {
		if o.Kind == kind && o.Metadata.Name == name {
			return o, true
		}
	}
	return object{}, false
}

func (m manifests) all(kind string) []object {
	var out []object
	for _, o := range m.objects {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

func decode[T any](t *testing.T, o object) T {
	t.Helper()
	var v T
	if err := yaml.Unmarshal(o.raw, &v); err != nil {
		t.Fatalf("%s %s: %v", o.Kind, o.Metadata.Name, err)
	}
	return v
}

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

// eachChart runs check, as a subtest, on the manifests rendered with each
// values file checked.
func eachChart(t *testing.T, check func(t *testing.T, c chartCase, m manifests)) {
	for _, c := range chartCases {
		t.Run(c.name, func(t *testing.T) {
			out, err := render(t, c.release, c.values)
			if err != nil {
				t.Fatal(err)
			}
			check(t, c, parseManifests(t, out))
		})
	}
}

func parseManifests(t *testing.T, out string) manifests {
	t.Helper()
	var m manifests
	for _, doc := range docSep.Split(out, -1) {
		if strings.TrimSpace(regexp.MustCompile(`(?m)^#.*$`).ReplaceAllString(doc, "")) == "" {
			continue
		}
		var o object
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatalf("rendered manifest does not parse: %v\n%s", err, doc)
		}
		if o.Kind == "" || o.APIVersion == "" || o.Metadata.Name == "" {
			t.Fatalf("rendered manifest lacks kind, apiVersion or name:\n%s", doc)
		}
		if _, dup := m.find(o.Kind, o.Metadata.Name); dup {
			t.Errorf("%s %s rendered twice", o.Kind, o.Metadata.Name)
		}
		o.raw = []byte(doc)
		m.objects = append(m.objects, o)
	}
	return m
}

// render is `helm template` of the chart, once per release and values file.
type renderKey struct{ release, values string }

var (
	renderMu    sync.Mutex
	renderCache = map[renderKey]string{}
)

func render(t *testing.T, release, valuesFile string, set ...string) (string, error) {
	t.Helper()
	args := []string{"template", release, chartDir, "--namespace", "mart", "--kube-version", kubeVersion}
	if valuesFile != "" {
		args = append(args, "-f", valuesFile)
	}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	if len(set) > 0 {
		return helm(t, args...)
	}
	key := renderKey{release, valuesFile}
	renderMu.Lock()
	defer renderMu.Unlock()
	if out, ok := renderCache[key]; ok {
		return out, nil
	}
	out, err := helm(t, args...)
	if err == nil {
		renderCache[key] = out
	}
	return out, err
}

// ---- the values files checked ----------------------------------------------------

type chartCase struct {
	name       string
	release    string
	values     string // relative to the repository root; "" for the defaults
	fullname   string // what the chart should call its objects
	autoscaled bool   // every Deployment has an HPA
	pdb        bool   // every Deployment has a PDB
	jwtKeys    bool   // the user service reads its keys from a mounted Secret
	kafkaTLS   bool
	// dbSecrets: the Secret each service's DATABASE_URL comes from, in
	// the Deployment and the migration Job.
	dbSecrets map[string]string
}

var chartCases = []chartCase{
	{name: "default", release: "mart", fullname: "mart", pdb: true, dbSecrets: dbSecrets("mart-database", nil)},
	{name: "production", release: "shop", values: chartDir + "/ci/production-values.yaml",
		fullname: "shop-mart", autoscaled: true, pdb: true, jwtKeys: true, kafkaTLS: true,
		dbSecrets: dbSecrets("mart-database", map[string]string{"order": "mart-order-db-app"})},
}

func dbSecrets(shared string, own map[string]string) map[string]string {
	out := map[string]string{}
	for _, s := range system.ServiceNames() {
		out[s] = shared
		if o, ok := own[s]; ok {
			out[s] = o
		}
	}
	return out
}

func secretOf(e envVar) string {
	if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
		return ""
	}
	return e.ValueFrom.SecretKeyRef.Name
}

// targets is every component with its port: the router, then the services.
func targets() []struct {
	Name string
	Port int
} {
	out := []struct {
		Name string
		Port int
	}{{"router", 4000}}
	for _, s := range system.Services() {
		out = append(out, struct {
			Name string
			Port int
		}{s.Name, s.Port})
	}
	return out
}

func TestHelmLint(t *testing.T) {
	for _, c := range chartCases {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"lint", "--strict", "--kube-version", kubeVersion, chartDir}
			if c.values != "" {
				args = append(args, "-f", c.values)
			}
			out, err := helm(t, args...)
			if err != nil {
				t.Fatal(err)
			}
			t.Log(strings.TrimSpace(out))
		})
	}
}

func TestHelmChartRendersEveryTarget(t *testing.T) {
	known := knownVars()
	eachChart(t, func(t *testing.T, c chartCase, m manifests) {
		if s := m.all("Secret"); len(s) > 0 {
			t.Errorf("the chart renders %d Secret(s); secrets must come from the operator", len(s))
		}
		for _, tg := range targets() {
			name := c.fullname + "-" + tg.Name
			o, ok := m.find("Deployment", name)
			if !ok {
				t.Errorf("no Deployment %s for target %s", name, tg.Name)
				continue
			}
			d := decode[deployment](t, o)
			checkDeployment(t, c, tg.Name, tg.Port, d, known)
			checkService(t, m, name, tg.Port, d)
			checkScaling(t, c, m, name, d)
		}
		if n := len(m.all("Deployment")); n != len(targets()) {
			t.Errorf("%d Deployments, want one per target (%d)", n, len(targets()))
		}
	})
}

func envOf(ctr container) map[string]envVar {
	out := map[string]envVar{}
	for _, e := range ctr.Env {
		out[e.Name] = e
	}
	return out
}

func literal(e envVar) string {
	if e.Value == nil {
		return ""
	}
	return *e.Value
}

func checkDeployment(t *testing.T, c chartCase, target string, port int, d deployment, known map[string]envvar.Var) {
	t.Helper()
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Errorf("%s: %d containers, want 1", target, len(pod.Containers))
		return
	}
	ctr := pod.Containers[0]
	if want := []string{"serve", "--targets", target}; !slices.Equal(ctr.Args, want) {
		t.Errorf("%s: args %q, want %q", target, ctr.Args, want)
	}
	for k, v := range d.Spec.Selector.MatchLabels {
		if d.Spec.Template.Metadata.Labels[k] != v {
			t.Errorf("%s: pod labels lack the selector's %s=%s", target, k, v)
		}
	}
	checkProbes(t, target, port, ctr)

	// Requests and limits.
	for _, r := range []string{"cpu", "memory"} {
		if ctr.Resources.Requests[r] == nil || ctr.Resources.Limits[r] == nil {
			t.Errorf("%s: resources lack the %s request or limit: %+v", target, r, ctr.Resources)
		}
	}
	checkContainerSecurity(t, target, ctr, pod)

	env := envOf(ctr)
	// Every variable is one mart reads, set once.
	seen := map[string]bool{}
	for _, e := range ctr.Env {
		if _, ok := known[e.Name]; !ok {
			t.Errorf("%s: env %s is not a variable of `mart --help` (system.Vars)", target, e.Name)
		}
		if seen[e.Name] {
			t.Errorf("%s: env %s set twice", target, e.Name)
		}
		seen[e.Name] = true
	}
	checkSecrets(t, target, ctr, pod)
	checkGracefulTermination(t, target, ctr, pod, env, known)

	// Listening on every interface, on the Service's port.
	addrVar := "MART_" + strings.ToUpper(target) + "_ADDR"
	if got, want := literal(env[addrVar]), fmt.Sprintf("0.0.0.0:%d", port); got != want {
		t.Errorf("%s: %s=%q, want %q", target, addrVar, got, want)
	}

	// Tokens are verified with the user Service's keys.
	if got, want := literal(env["MART_JWKS_URL"]), fmt.Sprintf("http://%s-user:4001/.well-known/jwks.json", c.fullname); got != want {
		t.Errorf("%s: MART_JWKS_URL=%q, want %q", target, got, want)
	}

	if target == "router" {
		checkRouterEnv(t, c, env)
	} else {
		checkServiceEnv(t, c, target, env)
	}
}

// checkProbes checks the container's http port and the probes on it.
func checkProbes(t *testing.T, target string, port int, ctr container) {
	t.Helper()
	named := map[string]int{}
	for _, p := range ctr.Ports {
		named[p.Name] = p.ContainerPort
	}
	if named["http"] != port {
		t.Errorf("%s: container port http = %d, want %d", target, named["http"], port)
	}
	probePort := func(p *probe) int {
		switch v := p.HTTPGet.Port.(type) {
		case string:
			return named[v]
		case uint64:
			return int(v)
		case int64:
			return int(v)
		case int:
			return v
		}
		return 0
	}
	for _, pc := range []struct {
		what string
		p    *probe
		path string
	}{{"readinessProbe", ctr.ReadinessProbe, "/readyz"}, {"livenessProbe", ctr.LivenessProbe, "/healthz"}, {"startupProbe", ctr.StartupProbe, "/healthz"}} {
		switch {
		case pc.p == nil && pc.what == "startupProbe":
		case pc.p == nil || pc.p.HTTPGet == nil:
			t.Errorf("%s: no httpGet %s", target, pc.what)
		case pc.p.HTTPGet.Path != pc.path || probePort(pc.p) != port:
			t.Errorf("%s: %s GET %s on port %d, want %s on %d", target, pc.what, pc.p.HTTPGet.Path, probePort(pc.p), pc.path, port)
		}
	}
}

// checkContainerSecurity checks that the container runs as non-root (by
// its own or the pod's security context), on a read-only root filesystem,
// without privilege escalation.
func checkContainerSecurity(t *testing.T, target string, ctr container, pod podSpec) {
	t.Helper()
	sc := ctr.SecurityContext
	podNonRoot := pod.SecurityContext != nil && pod.SecurityContext.RunAsNonRoot != nil && *pod.SecurityContext.RunAsNonRoot
	ctrNonRoot := sc != nil && sc.RunAsNonRoot != nil && *sc.RunAsNonRoot
	if !podNonRoot && !ctrNonRoot {
		t.Errorf("%s: runAsNonRoot not set", target)
	}
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("%s: readOnlyRootFilesystem not set", target)
	}
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("%s: allowPrivilegeEscalation not false", target)
	}
}

// checkGracefulTermination checks that the pod's grace period outlasts the
// drain: the preStop sleep (not exec: the image has no shell) and
// MART_SHUTDOWN_TIMEOUT of env, or its default in known.
func checkGracefulTermination(t *testing.T, target string, ctr container, pod podSpec, env map[string]envVar, known map[string]envvar.Var) {
	t.Helper()
	timeout, err := time.ParseDuration(literal(env["MART_SHUTDOWN_TIMEOUT"]))
	if err != nil {
		timeout, _ = time.ParseDuration(known["MART_SHUTDOWN_TIMEOUT"].Default)
	}
	var sleep time.Duration
	if ctr.Lifecycle != nil && ctr.Lifecycle.PreStop != nil {
		if _, ok := ctr.Lifecycle.PreStop["exec"]; ok {
			t.Errorf("%s: preStop exec: the distroless image has no shell nor sleep; use the sleep action", target)
		}
		if s, ok := ctr.Lifecycle.PreStop["sleep"].(map[string]any); ok {
			n, _ := strconv.Atoi(fmt.Sprint(s["seconds"]))
			sleep = time.Duration(n) * time.Second
		}
	}
	if pod.TerminationGracePeriodSeconds == nil {
		t.Errorf("%s: no terminationGracePeriodSeconds", target)
	} else if grace := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second; grace <= sleep+timeout {
		t.Errorf("%s: terminationGracePeriodSeconds %v does not exceed the preStop sleep %v + MART_SHUTDOWN_TIMEOUT %v", target, grace, sleep, timeout)
	}
}

// checkRouterEnv checks that the router routes to the chart's Services and
// is given neither Postgres nor Kafka, which it does not use.
func checkRouterEnv(t *testing.T, c chartCase, env map[string]envVar) {
	t.Helper()
	for _, s := range system.Services() {
		v := "MART_" + strings.ToUpper(s.Name) + "_ROUTING_URL"
		if got, want := literal(env[v]), fmt.Sprintf("http://%s-%s:%d/graphql", c.fullname, s.Name, s.Port); got != want {
			t.Errorf("router: %s=%q, want %q (the chart's Service)", v, got, want)
		}
	}
	for _, v := range []string{"DATABASE_URL", "KAFKA_BROKERS"} {
		if _, ok := env[v]; ok {
			t.Errorf("router: %s set; the router uses neither Postgres nor Kafka", v)
		}
	}
}

// checkServiceEnv checks that a service is given its database and a real
// Kafka cluster (with TLS and SASL when the chart case sets them up), and
// the user service the key file the case mounts.
func checkServiceEnv(t *testing.T, c chartCase, target string, env map[string]envVar) {
	t.Helper()
	dbVar := "MART_" + strings.ToUpper(target) + "_DATABASE"
	if literal(env[dbVar]) == "" {
		t.Errorf("%s: %s not set", target, dbVar)
	}
	if got := secretOf(env["DATABASE_URL"]); got != c.dbSecrets[target] {
		t.Errorf("%s: DATABASE_URL from Secret %q, want %q", target, got, c.dbSecrets[target])
	}
	if literal(env["KAFKA_BROKERS"]) == "" {
		t.Errorf("%s: KAFKA_BROKERS empty: every pod would start its own in-process broker", target)
	}
	if c.kafkaTLS {
		if literal(env["KAFKA_TLS"]) != "true" || literal(env["KAFKA_TLS_CA_FILE"]) == "" {
			t.Errorf("%s: KAFKA_TLS=%q KAFKA_TLS_CA_FILE=%q, want TLS with a CA file", target, literal(env["KAFKA_TLS"]), literal(env["KAFKA_TLS_CA_FILE"]))
		}
		if literal(env["KAFKA_SASL_MECHANISM"]) == "" || literal(env["KAFKA_SASL_USERNAME"]) == "" {
			t.Errorf("%s: SASL not configured", target)
		}
	}
	if target == "user" && c.jwtKeys && literal(env["MART_JWT_KEY_FILE"]) == "" {
		t.Errorf("user: MART_JWT_KEY_FILE not set")
	}
}

// checkSecrets: credentials come from Secrets, as references or mounted
// files, never as literal values.
func checkSecrets(t *testing.T, target string, ctr container, pod podSpec) {
	t.Helper()
	secretVolumes := map[string]bool{}
	for _, v := range pod.Volumes {
		if v.Secret != nil {
			secretVolumes[v.Name] = true
		}
	}
	credentialName := regexp.MustCompile(`(PASSWORD|TOKEN|SECRET|_KEY)$`)
	userinfo := regexp.MustCompile(`://[^/@\s]*:[^/@\s]*@`)
	for _, e := range ctr.Env {
		mustRef := slices.Contains(secretVars, e.Name) || credentialName.MatchString(e.Name)
		if mustRef {
			if e.Value != nil {
				t.Errorf("%s: %s has a literal value; it must come from a Secret", target, e.Name)
			}
			if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name == "" || e.ValueFrom.SecretKeyRef.Key == "" {
				t.Errorf("%s: %s is not a secretKeyRef", target, e.Name)
			}
		}
		if e.Value != nil && userinfo.MatchString(*e.Value) {
			t.Errorf("%s: %s holds a URL with credentials", target, e.Name)
		}
		if slices.Contains(fileVars, e.Name) && e.Value != nil && !mountedFrom(ctr, secretVolumes, *e.Value) {
			t.Errorf("%s: %s=%s is not in a volume mounted from a Secret", target, e.Name, *e.Value)
		}
	}
}

// mountedFrom says whether file is under a mount of the container of one
// of volumes (by name).
func mountedFrom(ctr container, volumes map[string]bool, file string) bool {
	for _, vm := range ctr.VolumeMounts {
		if volumes[vm.Name] && strings.HasPrefix(file, strings.TrimSuffix(vm.MountPath, "/")+"/") {
			return true
		}
	}
	return false
}

func checkService(t *testing.T, m manifests, name string, port int, d deployment) {
	t.Helper()
	o, ok := m.find("Service", name)
	if !ok {
		t.Errorf("no Service %s", name)
		return
	}
	s := decode[service](t, o)
	if len(s.Spec.Ports) != 1 || s.Spec.Ports[0].Port != port {
		t.Errorf("Service %s: ports %+v, want %d", name, s.Spec.Ports, port)
	} else if tp := fmt.Sprint(s.Spec.Ports[0].TargetPort); tp != "http" && tp != strconv.Itoa(port) {
		t.Errorf("Service %s: targetPort %s, want http", name, tp)
	}
	if len(s.Spec.Selector) == 0 {
		t.Errorf("Service %s has no selector", name)
	}
	for k, v := range s.Spec.Selector {
		if d.Spec.Template.Metadata.Labels[k] != v {
			t.Errorf("Service %s selects %s=%s, which the Deployment's pods lack", name, k, v)
		}
	}
}

func checkScaling(t *testing.T, c chartCase, m manifests, name string, d deployment) {
	t.Helper()
	o, ok := m.find("HorizontalPodAutoscaler", name)
	switch {
	case ok != c.autoscaled:
		t.Errorf("%s: HorizontalPodAutoscaler present = %v, want %v", name, ok, c.autoscaled)
	case ok:
		h := decode[hpa](t, o)
		if h.Spec.ScaleTargetRef.Kind != "Deployment" || h.Spec.ScaleTargetRef.Name != name {
			t.Errorf("HPA %s scales %s %s", name, h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name)
		}
		if h.Spec.MinReplicas < 1 || h.Spec.MaxReplicas < h.Spec.MinReplicas || len(h.Spec.Metrics) == 0 {
			t.Errorf("HPA %s: min %d max %d metrics %d", name, h.Spec.MinReplicas, h.Spec.MaxReplicas, len(h.Spec.Metrics))
		}
		if d.Spec.Replicas != nil {
			t.Errorf("Deployment %s sets replicas although an HPA scales it", name)
		}
	}
	o, ok = m.find("PodDisruptionBudget", name)
	switch {
	case ok != c.pdb:
		t.Errorf("%s: PodDisruptionBudget present = %v, want %v", name, ok, c.pdb)
	case ok:
		p := decode[pdb](t, o)
		if (p.Spec.MinAvailable == nil) == (p.Spec.MaxUnavailable == nil) {
			t.Errorf("PDB %s: want exactly one of minAvailable, maxUnavailable", name)
		}
		if !reflect.DeepEqual(p.Spec.Selector.MatchLabels, d.Spec.Selector.MatchLabels) {
			t.Errorf("PDB %s selects %v, the Deployment %v", name, p.Spec.Selector.MatchLabels, d.Spec.Selector.MatchLabels)
		}
	}
}

func TestHelmMigrationJob(t *testing.T) {
	eachChart(t, func(t *testing.T, c chartCase, m manifests) {
		jobs := m.all("Job")
		if len(jobs) != 1 {
			t.Fatalf("%d Jobs, want the migration Job", len(jobs))
		}
		j := decode[job](t, jobs[0])
		hooks := strings.Split(j.Metadata.Annotations["helm.sh/hook"], ",")
		if !slices.Contains(hooks, "pre-install") || !slices.Contains(hooks, "pre-upgrade") {
			t.Errorf("migration Job hooks %q, want pre-install and pre-upgrade", hooks)
		}
		if j.Metadata.Annotations["helm.sh/hook-delete-policy"] == "" || j.Metadata.Annotations["helm.sh/hook-weight"] == "" {
			t.Errorf("migration Job lacks a hook weight or delete policy: %v", j.Metadata.Annotations)
		}
		pod := j.Spec.Template.Spec
		if pod.RestartPolicy != "Never" && pod.RestartPolicy != "OnFailure" {
			t.Errorf("migration Job restartPolicy %q", pod.RestartPolicy)
		}
		var migrated []string
		for _, ctr := range pod.Containers {
			if len(ctr.Args) != 2 || ctr.Args[0] != "migrate" {
				t.Errorf("migration container %s runs %q, want migrate <service>", ctr.Name, ctr.Args)
				continue
			}
			migrated = append(migrated, ctr.Args[1])
			checkMigrationContainer(t, c, ctr.Args[1], ctr, pod)
		}
		if !slices.Equal(migrated, system.ServiceNames()) {
			t.Errorf("migration Job migrates %q, want %q", migrated, system.ServiceNames())
		}
	})
}

// checkMigrationContainer checks the container of the migration Job that
// migrates svc: the service's database and Secret, only mart's variables,
// credentials from Secrets, limits and a read-only root filesystem.
func checkMigrationContainer(t *testing.T, c chartCase, svc string, ctr container, pod podSpec) {
	t.Helper()
	env := envOf(ctr)
	if literal(env["MART_"+strings.ToUpper(svc)+"_DATABASE"]) == "" {
		t.Errorf("migrate %s: MART_%s_DATABASE not set", svc, strings.ToUpper(svc))
	}
	if got := secretOf(env["DATABASE_URL"]); got != c.dbSecrets[svc] {
		t.Errorf("migrate %s: DATABASE_URL from Secret %q, want %q", svc, got, c.dbSecrets[svc])
	}
	for _, e := range ctr.Env {
		if _, ok := knownVars()[e.Name]; !ok {
			t.Errorf("migrate %s: env %s is not a variable of `mart --help`", svc, e.Name)
		}
	}
	checkSecrets(t, "migrate "+svc, ctr, pod)
	if ctr.Resources.Limits["memory"] == nil || ctr.SecurityContext == nil || ctr.SecurityContext.ReadOnlyRootFilesystem == nil || !*ctr.SecurityContext.ReadOnlyRootFilesystem {
		t.Errorf("migrate %s: want limits and a read-only root filesystem", svc)
	}
}

// TestHelmKongConfig: the ConfigMap Kong's chart loads is kong/kong.yml with
// only its upstream changed, to the router Service; kong-values.yaml loads
// it in DB-less mode.
func TestHelmKongConfig(t *testing.T) {
	out, err := render(t, "mart", "")
	if err != nil {
		t.Fatal(err)
	}
	m := parseManifests(t, out)
	o, ok := m.find("ConfigMap", "mart-kong")
	if !ok {
		t.Fatal("no ConfigMap mart-kong")
	}
	rendered := decode[configMap](t, o).Data["kong.yml"]
	var got kongConfig
	if err := yaml.UnmarshalWithOptions([]byte(rendered), &got, yaml.Strict()); err != nil {
		t.Fatalf("rendered kong.yml: %v", err)
	}
	want := readKong(t)
	if len(got.Services) != 1 || got.Services[0].URL != "http://mart-router.mart.svc:4000" {
		t.Fatalf("rendered kong.yml services %+v, want one with url http://mart-router.mart.svc:4000", got.Services)
	}
	if _, ok := m.find("Service", "mart-router"); !ok {
		t.Error("no Service mart-router for Kong to reach")
	}
	got.Services[0].URL = want.Services[0].URL
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rendered kong.yml differs from kong/kong.yml beyond the upstream URL")
	}

	var kv struct {
		IngressController struct {
			Enabled bool `yaml:"enabled"`
		} `yaml:"ingressController"`
		DBlessConfig struct {
			ConfigMap string `yaml:"configMap"`
		} `yaml:"dblessConfig"`
		Env   map[string]any `yaml:"env"`
		Image struct {
			Repository string `yaml:"repository"`
			Tag        string `yaml:"tag"`
		} `yaml:"image"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, "deploy/helm/kong-values.yaml")), &kv); err != nil {
		t.Fatalf("deploy/helm/kong-values.yaml: %v", err)
	}
	if kv.DBlessConfig.ConfigMap != o.Metadata.Name {
		t.Errorf("kong-values.yaml: dblessConfig.configMap %q, want the chart's %q", kv.DBlessConfig.ConfigMap, o.Metadata.Name)
	}
	if fmt.Sprint(kv.Env["database"]) != "off" || kv.IngressController.Enabled {
		t.Errorf("kong-values.yaml: want env.database off and no ingress controller, got %v, %v", kv.Env["database"], kv.IngressController.Enabled)
	}
	if kv.Image.Repository != "kong" || kv.Image.Tag == "" {
		t.Errorf("kong-values.yaml: want the OSS image kong with a pinned tag, got %s:%s", kv.Image.Repository, kv.Image.Tag)
	}
}

// TestHelmRefusesUnsafeValues: secrets given as plain values, and a missing
// Kafka, fail the render instead of reaching the cluster.
func TestHelmRefusesUnsafeValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  []string
		want string
	}{
		{"plain secret in env", []string{"env.MART_SMTP_PASSWORD=hunter2"}, "holds a secret"},
		{"plain secret in a component's env", []string{"components.user.env.DATABASE_URL=postgres://u:p@db/x"}, "holds a secret"},
		{"chart-managed variable in env", []string{"components.router.env.MART_USER_ROUTING_URL=http://x"}, "set by the chart"},
		{"listen address in env", []string{"env.MART_ORDER_ADDR=127.0.0.1:1"}, "set by the chart"},
		{"no Kafka brokers", []string{"kafka.brokers="}, "kafka.brokers is required"},
		{"admin without password Secret", []string{"admin.email=a@b.c"}, "admin.passwordSecret.name is required"},
		{"bad SASL mechanism", []string{"kafka.sasl.mechanism=GSSAPI", "kafka.sasl.username=u"}, "kafka.sasl.mechanism"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, "mart", "", tc.set...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("helm template --set %v: err %v, want one mentioning %q", tc.set, err, tc.want)
			}
		})
	}
}

// TestHelmValuesHaveNoSecrets: values.yaml and the CI values only name
// Secrets; nothing that looks like a credential has a value.
func TestHelmValuesHaveNoSecrets(t *testing.T) {
	for _, f := range []string{chartDir + "/values.yaml", chartDir + "/ci/production-values.yaml", "deploy/helm/kong-values.yaml"} {
		var v any
		if err := yaml.Unmarshal([]byte(readFile(t, f)), &v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var walk func(path string, v any)
		walk = func(path string, v any) {
			switch x := v.(type) {
			case map[string]any:
				for k, e := range x {
					walk(path+"."+k, e)
				}
			case []any:
				for i, e := range x {
					walk(fmt.Sprintf("%s[%d]", path, i), e)
				}
			case string:
				leaf := strings.ToLower(path[strings.LastIndex(path, ".")+1:])
				if x != "" && (strings.HasSuffix(leaf, "password") || strings.HasSuffix(leaf, "token") || strings.HasSuffix(leaf, "secret")) {
					t.Errorf("%s: %s has a value; name a Secret instead", f, path)
				}
				if regexp.MustCompile(`://[^/@\s]*:[^/@\s]*@`).MatchString(x) {
					t.Errorf("%s: %s holds a URL with credentials", f, path)
				}
			}
		}
		walk("", v)
	}
}
