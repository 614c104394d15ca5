package gqltest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
)

// Response is a GraphQL response.
type Response struct {
	Status int             `json:"-"`
	Data   json.RawMessage `json:"data"`
	Errors []Error         `json:"errors"`
}

// Error is one GraphQL error.
type Error struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

// Code returns extensions.code.
func (e Error) Code() string { s, _ := e.Extensions["code"].(string); return s }

// Client sends GraphQL operations to one endpoint, with a bearer token
// when it has one.
type Client struct {
	URL   string
	Token string
}

// Query sends an operation and decodes the data into out (when not nil).
// It fails the test on transport problems only; GraphQL errors are
// returned for the test to judge.
func (c Client) Query(t testing.TB, query string, vars map[string]any, out any) Response {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, c.URL, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	return Do(t, req, out)
}

// MustQuery is Query that fails the test on any GraphQL error.
func (c Client) MustQuery(t testing.TB, query string, vars map[string]any, out any) {
	t.Helper()
	if r := c.Query(t, query, vars, out); len(r.Errors) > 0 {
		t.Fatalf("query failed: %+v", r.Errors)
	}
}

// Post sends a raw body to url and decodes the GraphQL response.
func Post(t testing.TB, url, contentType string, body []byte, out any) Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	return Do(t, req, out)
}

// Do sends req and decodes the GraphQL response.
func Do(t testing.TB, req *http.Request, out any) Response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("graphql request: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r Response
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("response is not GraphQL JSON (status %d): %v: %s", resp.StatusCode, err, raw)
	}
	r.Status = resp.StatusCode
	if out != nil && len(r.Data) > 0 && string(r.Data) != "null" {
		if err := json.Unmarshal(r.Data, out); err != nil {
			t.Fatalf("decode data: %v: %s", err, r.Data)
		}
	}
	return r
}
