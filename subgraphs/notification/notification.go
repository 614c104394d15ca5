// Package notification is the notification service: it tells users by
// email and SMS what happened to their account, orders and payments, as
// the other services' events say, according to each user's preferences.
// It adds User.notifications to the graph and publishes no events.
package notification

//go:generate go tool gqlgen generate --config gqlgen.yml

import (
	"context"

	"github.com/onlinemart/mart/internal/service"
	"github.com/onlinemart/mart/subgraphs/notification/core"
	"github.com/onlinemart/mart/subgraphs/notification/graph"
)

// Spec is the notification service as the runtime runs it, delivering as
// cfg says (the zero Config writes every message to the log).
func Spec(cfg Config) service.Spec {
	return service.Spec{
		Name:       "notification",
		Migrations: []string{"notification"},
		Publishes:  core.Publishes,
		Consumes:   core.Consumes,
		Build: func(_ context.Context, d service.Deps) (*service.Parts, error) {
			senders, err := core.NewSenders(cfg.SMTP, cfg.SMS, d.Logger)
			if err != nil {
				return nil, err
			}
			notes := core.NewNotifications(d.DB, core.Options{Senders: senders, Logger: d.Logger})
			notes.RegisterHandlers(d.Handlers)
			return &service.Parts{
				Schema:  graph.NewExecutableSchema(graph.Config{Resolvers: &graph.Resolver{Store: notes}}),
				Access:  graph.Access,
				Workers: []service.Worker{notes},
			}, nil
		},
	}
}
