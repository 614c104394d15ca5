package user_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/onlinemart/mart/internal/events"
	"github.com/onlinemart/mart/internal/kafka/kafkatest"
	"github.com/onlinemart/mart/internal/postgres/pgtest"
	"github.com/onlinemart/mart/subgraphs/user"
	"github.com/onlinemart/mart/testkit/gqltest"
	"github.com/onlinemart/mart/testkit/servicetest"
	"github.com/onlinemart/mart/testkit/testrun"
)

// Two starts over one database: the first admin is created once, the
// signing key is generated once and published, and tokens verify against
// the published keys.
func TestStartsShareKeysAndBootstrapTheAdminOnce(t *testing.T) {
	db := pgtest.New(t, "user")
	spec := user.Spec(user.Config{AccessTokenTTL: time.Minute, RefreshTokenTTL: time.Hour,
		AdminEmail: "root@mart.test", AdminPassword: "admin passphrase"})
	one, two := servicetest.StartOn(t, spec, db), servicetest.StartOn(t, spec, db)
	first, second := one.URL, two.URL

	jwks := func(base string) (kids []string) {
		t.Helper()
		resp, err := http.Get(base + "/.well-known/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "public, max-age=300" {
			t.Fatalf("jwks: %s, Cache-Control %q", resp.Status, resp.Header.Get("Cache-Control"))
		}
		var set struct {
			Keys []struct{ Kid, Kty, Crv, D string }
		}
		if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
			t.Fatal(err)
		}
		for _, k := range set.Keys {
			if k.D != "" || k.Kty != "OKP" || k.Crv != "Ed25519" {
				t.Fatalf("published key %+v: want public Ed25519 only", k)
			}
			kids = append(kids, k.Kid)
		}
		return kids
	}
	a, b := jwks(first), jwks(second)
	if len(a) != 1 || len(b) != 1 || a[0] != b[0] {
		t.Fatalf("starts publish keys %v and %v, want one and the same", a, b)
	}

	var n int
	if err := db.DB.QueryRow(`SELECT count(*) FROM users WHERE email = 'root@mart.test' AND role = 'ADMIN'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d admins (%v), want 1", n, err)
	}
	testrun.WaitFor(t, "the outbox to drain", func() bool { return db.Count(t, `SELECT count(*) FROM outbox`) == 0 })
	published := append(kafkatest.ReadTopic(t, one.Cluster, events.Topic("user")), kafkatest.ReadTopic(t, two.Cluster, events.Topic("user"))...)
	if len(published) != 1 {
		t.Fatalf("%d events, want one UserRegistered", len(published))
	}

	// A token from one start verifies against the keys the other publishes.
	var out struct {
		Login struct {
			AccessToken *string
			User        *struct{ ID string }
		}
	}
	gqltest.Client{URL: first + "/graphql"}.MustQuery(t,
		`mutation { login(input: {email: "root@mart.test", password: "admin passphrase"}) { accessToken user { id } } }`, nil, &out)
	if out.Login.AccessToken == nil {
		t.Fatal("the bootstrapped admin cannot sign in")
	}
	p, err := auth.NewVerifier(second+"/.well-known/jwks.json", "mart", "mart-api").Verify(context.Background(), *out.Login.AccessToken)
	if err != nil || p.Role != auth.Admin || p.UserID != out.Login.User.ID {
		t.Fatalf("verify: %+v %v", p, err)
	}
}
