package system

import (
	"slices"

	"github.com/onlinemart/mart/internal/service"
	"github.com/onlinemart/mart/subgraphs/inventory"
	"github.com/onlinemart/mart/subgraphs/notification"
	"github.com/onlinemart/mart/subgraphs/order"
	"github.com/onlinemart/mart/subgraphs/payment"
	"github.com/onlinemart/mart/subgraphs/product"
	"github.com/onlinemart/mart/subgraphs/user"
)

// Target is one component the binary can run.
type Target struct {
	Name string
	Port int // default port of its listen address
	// Service is the subgraph service the target runs, with its settings
	// from c; nil for the router.
	Service func(c *Config) service.Spec
}

// Targets are every component, in start order: the user service first,
// so the others verify tokens with its real address; the router last, so
// it finds every service listening. They stop in reverse.
var Targets = []Target{
	{Name: "user", Port: 4001, Service: func(c *Config) service.Spec { return user.Spec(c.User) }},
	{Name: "product", Port: 4002, Service: func(*Config) service.Spec { return product.Spec }},
	{Name: "order", Port: 4003, Service: func(*Config) service.Spec { return order.Spec }},
	{Name: "inventory", Port: 4004, Service: func(*Config) service.Spec { return inventory.Spec }},
	{Name: "payment", Port: 4005, Service: func(*Config) service.Spec { return payment.Spec }},
	{Name: "notification", Port: 4006, Service: func(c *Config) service.Spec { return notification.Spec(c.Notification) }},
	{Name: Router, Port: 4000},
}

// Router is the router's target name.
const Router = "router"

// ServiceNames returns the names of the subgraph services, in start order.
func ServiceNames() []string {
	var names []string
	for _, t := range Services() {
		names = append(names, t.Name)
	}
	return names
}

// Spec returns the spec of the service name with its settings from c.
func Spec(c *Config, name string) (service.Spec, bool) {
	for _, t := range Targets {
		if t.Name == name && t.Service != nil {
			return t.Service(c), true
		}
	}
	return service.Spec{}, false
}

// Services returns the targets that are subgraph services, in start order.
func Services() []Target {
	return slices.DeleteFunc(slices.Clone(Targets), func(t Target) bool { return t.Service == nil })
}
