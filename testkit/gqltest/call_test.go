package gqltest_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/onlinemart/mart/testkit/gqltest"
)

func TestCallReturnsDataAndErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A failed write shows in what Call returns, which is checked.
		switch r.Header.Get("Authorization") {
		case "Bearer good":
			_, _ = w.Write([]byte(`{"data":{"me":{"email":"a@b.c"}}}`))
		case "Bearer bad":
			_, _ = w.Write([]byte(`{"errors":[{"message":"no","extensions":{"code":"FORBIDDEN"}}]}`))
		default:
			_, _ = w.Write([]byte(`<html>`))
		}
	}))
	defer srv.Close()
	var out struct{ Me struct{ Email string } }
	if err := gqltest.Call(context.Background(), srv.Client(), srv.URL, "good", `{ me { email } }`, nil, &out); err != nil || out.Me.Email != "a@b.c" {
		t.Errorf("data: %+v %v", out, err)
	}
	if err := gqltest.Call(context.Background(), srv.Client(), srv.URL, "bad", `{ me { email } }`, nil, nil); err == nil || !strings.Contains(err.Error(), "FORBIDDEN") {
		t.Errorf("GraphQL error: %v", err)
	}
	if err := gqltest.Call(context.Background(), srv.Client(), srv.URL, "", `{ me { email } }`, nil, nil); err == nil || !strings.Contains(err.Error(), "not GraphQL JSON") {
		t.Errorf("not JSON: %v", err)
	}
}
