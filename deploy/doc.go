// Package deploy holds the static checks of Online Mart's container
// deliverables: the Dockerfile, compose.yaml, .env.example, kong/kong.yml
// and the dev container. No Docker engine is needed: the tests parse the
// files and compare them with each other, with supergraph.yaml and with the
// variables internal/config knows. See README.md in this folder.
package deploy
