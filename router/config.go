package router

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/goccy/go-yaml"
)

// Subgraph is one service composed into the supergraph.
type Subgraph struct {
	Name       string // unique, lower case, e.g. "product"
	RoutingURL string // where the router sends operations, e.g. http://127.0.0.1:4002/graphql
	SchemaFile string // path of the subgraph SDL, resolved against the config file's folder
}

type supergraphFile struct {
	Subgraphs []struct {
		Name       string `yaml:"name"`
		RoutingURL string `yaml:"routing_url"`
		Schema     string `yaml:"schema"`
	} `yaml:"subgraphs"`
}

// LoadSupergraphConfig reads supergraph.yaml. Schema paths in the file are
// relative to the file itself, so the result works from any working
// directory. routingOverrides replaces routing URLs by subgraph name (the
// caller reads them from the environment); naming an unknown subgraph is an
// error, since it is almost always a typo.
func LoadSupergraphConfig(path string, routingOverrides map[string]string) ([]Subgraph, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read supergraph config: %w", err)
	}
	var file supergraphFile
	if err := yaml.UnmarshalWithOptions(raw, &file, yaml.Strict()); err != nil {
		return nil, fmt.Errorf("parse supergraph config %s: %w", path, err)
	}
	if len(file.Subgraphs) == 0 {
		return nil, fmt.Errorf("supergraph config %s lists no subgraphs", path)
	}

	dir := filepath.Dir(path)
	seen := make(map[string]bool, len(file.Subgraphs))
	subgraphs := make([]Subgraph, 0, len(file.Subgraphs))
	var errs []error
	for i, s := range file.Subgraphs {
		switch {
		case s.Name == "":
			errs = append(errs, fmt.Errorf("subgraph #%d has no name", i+1))
			continue
		case seen[s.Name]:
			errs = append(errs, fmt.Errorf("subgraph %q is listed twice", s.Name))
			continue
		}
		seen[s.Name] = true
		if s.Schema == "" {
			errs = append(errs, fmt.Errorf("subgraph %q has no schema", s.Name))
		}
		url := s.RoutingURL
		if u, ok := routingOverrides[s.Name]; ok && u != "" {
			url = u
		}
		if url == "" {
			errs = append(errs, fmt.Errorf("subgraph %q has no routing_url", s.Name))
		}
		schema := s.Schema
		if schema != "" && !filepath.IsAbs(schema) {
			schema = filepath.Join(dir, schema)
		}
		subgraphs = append(subgraphs, Subgraph{Name: s.Name, RoutingURL: url, SchemaFile: schema})
	}
	for name := range routingOverrides {
		if !seen[name] {
			errs = append(errs, fmt.Errorf("routing override for unknown subgraph %q", name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("supergraph config %s: %w", path, err)
	}
	return subgraphs, nil
}
