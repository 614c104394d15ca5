package gqlserver_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/onlinemart/mart/internal/gqlserver"
	"github.com/onlinemart/mart/internal/gqlserver/internal/example"
)

// A service that forgets to guard a mutation or subscription, or guards a
// field that does not exist, does not start.
func TestEveryMutationAndSubscriptionNeedsARule(t *testing.T) {
	schema := example.NewExecutableSchema(example.Config{Resolvers: &example.Resolver{}})
	cases := map[string]auth.Rules{
		"no access rule for Mutation.createProduct":                    {},
		"no access rule for Subscription.productChanged":               {"Mutation.createProduct": auth.Public},
		"access rule for unknown root field Mutation.deleteEverything": withExtra(example.Access, "Mutation.deleteEverything"),
	}
	for want, rules := range cases {
		got := func() (msg string) {
			defer func() { msg = fmt.Sprint(recover()) }()
			gqlserver.New(schema, gqlserver.Options{Access: rules})
			return ""
		}()
		if !strings.Contains(got, want) {
			t.Errorf("got %q, want it to mention %q", got, want)
		}
	}
	gqlserver.New(schema, gqlserver.Options{Access: example.Access}) // complete rules start fine
}

func withExtra(rules auth.Rules, key string) auth.Rules {
	out := auth.Rules{key: auth.Public}
	for k, v := range rules {
		out[k] = v
	}
	return out
}
