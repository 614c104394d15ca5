package postgres

import (
	"net/url"

	"github.com/onlinemart/mart/internal/envvar"
)

// ServerURLVar declares the Postgres server every service's database
// lives on, filling p.
func ServerURLVar(p *string) envvar.Var {
	return envvar.Func("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
		"Postgres server URL; each service derives its own database (mart_<service>) from it", func(s string) error {
			if _, err := url.Parse(s); err != nil {
				return err
			}
			*p = s
			return nil
		})
}
