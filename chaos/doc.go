// Package chaos holds the fault-injection suite of Online Mart:
// every service and the router run as separate processes over a Postgres
// server and a Kafka broker of the test's own, under a steady order load,
// while the test kills processes (SIGKILL), restarts the router, Postgres
// (graceful and crash) and the broker, slows the broker's deliveries and
// delivers events twice, late and out of order. After the load stops and
// the system drains, it checks the books (clustertest.Books): no order lost
// or stuck, money and stock moved once and consistently, one notification
// per order, status and channel, outboxes empty, no dead letters.
//
// `make test` runs a short round (about a minute of faults, each kind at
// least once); `make chaos` a long one (MART_CHAOS=1, several minutes):
//
//	MART_CHAOS=1 go test -count=1 -timeout 30m -v -run Chaos ./chaos
//
// MART_CHAOS_DURATION overrides the length of the load and MART_CHAOS_SEED
// replays a schedule. With KAFKA_BROKERS set, the suite uses that Kafka
// instead of its own broker and does not restart or slow it. Process
// logs, the Postgres log and the round's figures (figures.md) are kept
// under $MART_ARTIFACTS (default $TMPDIR/mart-artifacts).
package chaos
