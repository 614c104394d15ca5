// Package deploy holds the static checks of Online Mart's container
// deliverables: the Dockerfile, compose.yaml, .env.example, kong/kong.yml,
// the dev container and the Helm chart (helm/mart). No Docker engine or
// cluster is needed: the tests parse the files (the chart as rendered by
// helm template) and compare them with each other, with supergraph.yaml and
// with the variables mart declares (system.Vars). See README.md in this folder.
package deploy
