package gqltest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// Call sends one operation to url with hc and decodes its data into out
// (when not nil). Unlike Client it fails no test: transport failures,
// answers that are not GraphQL JSON and GraphQL errors come back as
// errors, so that load drivers can call it from any goroutine.
func Call(ctx context.Context, hc *http.Client, url, token, query string, vars map[string]any, out any) error {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var r Response
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("status %d, not GraphQL JSON: %.200s", resp.StatusCode, raw)
	}
	if len(r.Errors) > 0 {
		return fmt.Errorf("graphql (status %d): %s %s", resp.StatusCode, r.Errors[0].Message, r.Errors[0].Code())
	}
	if out != nil && len(r.Data) > 0 && string(r.Data) != "null" {
		return json.Unmarshal(r.Data, out)
	}
	return nil
}
