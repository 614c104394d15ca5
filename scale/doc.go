// Package scale holds the replica test of Online Mart: every
// service runs as two processes and the router as two, behind haproxy, over
// one Postgres server and one Kafka broker, under a steady order load, while
// replicas are killed and restarted. See scale_test.go for what it shows and
// docs/reliability.md for the figures of a run.
//
// It is slow (minutes) and needs haproxy, so `make test` (go test ./...)
// skips it: it runs only with MART_SCALE_TEST=1, which `make scale-test`
// sets:
//
//	MART_SCALE_TEST=1 go test -count=1 -timeout 20m -v ./scale
//
// Process logs, the haproxy configuration and the run's figures
// (figures.md) are kept under $MART_ARTIFACTS (default
// $TMPDIR/mart-artifacts).
package scale
