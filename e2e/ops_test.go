package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/onlinemart/mart/testkit/systemtest"
)

// Every component answers health, readiness and metrics, and tags each
// response with the request id it was given.
func TestHealthReadinessMetricsAndRequestIDs(t *testing.T) {
	sys := systemtest.Start(t)
	sys.MustQuery(t, `{ products { edges { cursor } } }`, nil, nil)
	for name, url := range map[string]string{"router": sys.RouterURL, "product": sys.Services["product"]} {
		base := strings.TrimSuffix(url, "/graphql")
		for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
			resp, err := http.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s %s: %d %s", name, path, resp.StatusCode, body)
			}
			if path == "/readyz" && name == "product" && (!strings.Contains(string(body), `"postgres":"ok"`) || !strings.Contains(string(body), `"kafka":"ok"`)) {
				t.Errorf("product readiness does not report its dependencies: %s", body)
			}
			if path == "/metrics" && !strings.Contains(string(body), "mart_http_requests_total") {
				t.Errorf("%s metrics lack request counts", name)
			}
			if path == "/metrics" && name == "product" && !strings.Contains(string(body), `mart_graphql_responses_total{outcome="ok",service="product",type="query"}`) {
				t.Errorf("product metrics lack GraphQL operation counts")
			}
		}
	}

	req, _ := http.NewRequest(http.MethodPost, sys.RouterURL, strings.NewReader(`{"query":"{ products { edges { cursor } } }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", "e2e-req-42")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Request-Id"); got != "e2e-req-42" {
		t.Errorf("X-Request-Id %q, want the client's", got)
	}
}
