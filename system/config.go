package system

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/onlinemart/mart/internal/envvar"
	"github.com/onlinemart/mart/internal/httpserver"
	"github.com/onlinemart/mart/internal/kafka"
	"github.com/onlinemart/mart/internal/service"
	"github.com/onlinemart/mart/router"
	"github.com/onlinemart/mart/subgraphs/notification"
	"github.com/onlinemart/mart/subgraphs/user"
)

// Config is the whole configuration of one mart process: the components'
// own settings, embedded, and the process's.
type Config struct {
	Targets      []string
	Runtime      service.Config
	Kafka        kafka.Config
	HTTP         httpserver.Timeouts
	Auth         auth.Config
	Router       router.Config
	User         user.Config
	Notification notification.Config
	// Services are the subgraph services' addresses and databases by name.
	Services  map[string]*service.Endpoint
	LogLevel  string
	LogFormat string
	PprofAddr string // empty: no profiler endpoint
}

// Vars declares every environment variable mart reads, bound to c's
// fields, in the order `mart --help` lists them.
func (c *Config) Vars() []envvar.Var {
	vars := []envvar.Var{
		envvar.Func("MART_TARGETS", "all", "components to run: all, or a comma list of "+strings.Join(TargetNames(), ","), func(s string) error {
			targets, err := ParseTargets(s)
			c.Targets = targets
			return err
		}),
	}
	vars = append(vars, c.Runtime.Vars()...)
	vars = append(vars, c.Kafka.Vars()...)
	vars = append(vars, c.Router.Vars()...)
	vars = append(vars, c.HTTP.Vars()...)
	vars = append(vars, c.Auth.Vars()...)
	vars = append(vars, c.User.Vars()...)
	vars = append(vars, c.Notification.Vars()...)
	vars = append(vars,
		envvar.String(&c.LogLevel, "MART_LOG_LEVEL", "info", "debug, info, warn or error"),
		envvar.String(&c.LogFormat, "MART_LOG_FORMAT", "text", "text or json"),
		envvar.String(&c.PprofAddr, "MART_PPROF_ADDR", "", "serve Go's profiler (/debug/pprof/) on this address, e.g. 127.0.0.1:6060; empty: off. Keep it private"),
	)
	if c.Services == nil {
		c.Services = map[string]*service.Endpoint{}
	}
	for _, t := range Targets {
		if t.Service == nil {
			vars = append(vars, envvar.String(&c.Router.Addr, "MART_ROUTER_ADDR", fmt.Sprintf("127.0.0.1:%d", t.Port), "router listen address (GraphQL at /graphql)"))
			continue
		}
		e := &service.Endpoint{}
		c.Services[t.Name] = e
		vars = append(append(vars, e.Vars(t.Name, t.Port)...), c.Router.RoutingVar(t.Name))
	}
	return vars
}

// Vars returns the declarations of every variable, for help and checks.
func Vars() []envvar.Var { return new(Config).Vars() }

// Load reads the configuration from the environment.
func Load() (*Config, error) { return LoadFrom(os.LookupEnv) }

// LoadFrom reads the configuration through lookup.
func LoadFrom(lookup func(string) (string, bool)) (*Config, error) {
	c := &Config{}
	if err := envvar.Load(c.Vars(), lookup); err != nil {
		return nil, err
	}
	if err := c.Kafka.Check(); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	return c, nil
}

// ParseTargets expands a comma list of targets; "all" means every
// component. The result is in start order.
func ParseTargets(s string) ([]string, error) {
	want := map[string]bool{}
	for _, t := range envvar.SplitList(s) {
		switch {
		case t == "all":
			for _, n := range TargetNames() {
				want[n] = true
			}
		case slices.Contains(TargetNames(), t):
			want[t] = true
		default:
			return nil, fmt.Errorf("unknown target %q", t)
		}
	}
	var out []string
	for _, n := range TargetNames() {
		if want[n] {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no targets given")
	}
	return out, nil
}

// TargetNames returns the name of every target, in start order.
func TargetNames() []string {
	names := make([]string, len(Targets))
	for i, t := range Targets {
		names[i] = t.Name
	}
	return names
}
