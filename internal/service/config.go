package service

import (
	"fmt"
	"strings"
	"time"

	"github.com/onlinemart/mart/internal/envvar"
	"github.com/onlinemart/mart/internal/gqlserver"
	"github.com/onlinemart/mart/internal/postgres"
)

// Config holds the runtime's settings, shared by every service of a
// process.
type Config struct {
	DatabaseURL    string // the Postgres server; each service has its own database on it
	DBMaxConns     int    // per service process
	InboxRetention time.Duration
	PruneInterval  time.Duration
	Limits         gqlserver.Limits
}

// Vars declares the runtime's settings.
func (c *Config) Vars() []envvar.Var {
	return append([]envvar.Var{
		postgres.ServerURLVar(&c.DatabaseURL),
		envvar.Duration(&c.InboxRetention, "MART_INBOX_RETENTION", "168h", "how long a service remembers the events it handled, to skip redeliveries; at least the topics' retention"),
		envvar.Duration(&c.PruneInterval, "MART_PRUNE_INTERVAL", "1h", "how often a service deletes rows whose retention ended (inbox entries, expired sessions)"),
		envvar.Int(&c.DBMaxConns, "MART_DB_MAX_CONNS", "20", "connections each service process may open to its database (plus one for its outbox relay)"),
	}, c.Limits.Vars()...)
}

// Endpoint is where one service listens and which database it owns.
type Endpoint struct {
	Addr     string
	Database string // database name on the Config.DatabaseURL server
}

// Vars declares the endpoint of the service name with its default port.
func (e *Endpoint) Vars(name string, port int) []envvar.Var {
	up := strings.ToUpper(name)
	return []envvar.Var{
		envvar.String(&e.Addr, "MART_"+up+"_ADDR", fmt.Sprintf("127.0.0.1:%d", port), name+" subgraph listen address"),
		envvar.String(&e.Database, "MART_"+up+"_DATABASE", "mart_"+name, name+" database name on the DATABASE_URL server"),
	}
}
