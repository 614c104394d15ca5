// Package notification is the notification service: it tells users by
// email and SMS what happened to their account, orders and payments, as
// the other services' events say, according to each user's preferences.
// It adds User.notifications to the graph and publishes no events.
package notification

//go:generate go tool gqlgen generate --config gqlgen.yml

import (
	"context"
	"fmt"

	"github.com/onlinemart/mart/internal/config"
	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/inbox"
	"github.com/onlinemart/mart/internal/kafka"
	"github.com/onlinemart/mart/internal/service"
	"github.com/onlinemart/mart/subgraphs/notification/core"
	"github.com/onlinemart/mart/subgraphs/notification/graph"
)

// Topics is what the notification service consumes: contacts from user,
// orders and their progress from order, failed payments and refunds from
// payment.
var Topics = []string{events.Topic("user"), events.Topic("order"), events.Topic("payment")}

// Spec is the notification service as the runtime runs it.
var Spec = service.Spec{
	Name:       "notification",
	Migrations: []string{"notification"},
	Build: func(ctx context.Context, d service.Deps) (*service.Parts, error) {
		// Create the topics we read with the project's partition count, in
		// case we start before their producers.
		if err := kafka.EnsureTopics(ctx, d.Kafka, service.Partitions, Topics...); err != nil {
			return nil, fmt.Errorf("notification: %w", err)
		}
		var cfg config.Notify // none: write messages to the log
		if d.Config != nil {
			cfg = d.Config.Notify
		}
		senders, err := core.NewSenders(cfg, d.Logger)
		if err != nil {
			return nil, fmt.Errorf("notification: %w", err)
		}
		notes := core.NewNotifications(d.DB, core.Options{Senders: senders, Logger: d.Logger})
		consumer, err := inbox.New(d.DB, d.Cluster, "notification", Topics, inbox.Options{Logger: d.Logger})
		if err != nil {
			return nil, err
		}
		notes.Register(consumer)
		return &service.Parts{
			Schema:  graph.NewExecutableSchema(graph.Config{Resolvers: &graph.Resolver{Store: notes}}),
			Access:  graph.Access,
			Workers: []service.Worker{consumer, notes},
		}, nil
	},
}
