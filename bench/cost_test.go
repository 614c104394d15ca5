package bench

import (
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onlinemart/mart/internal/postgres/pgtest"
)

// Orders placed to measure what one order costs in Postgres.
const costOrders = 100

// dbCounters are the pg_stat_database counters of one database.
type dbCounters struct {
	xacts   int64 // xact_commit + xact_rollback
	written int64 // tup_inserted + tup_updated + tup_deleted
}

func readCounters(b *testing.B, admin *sql.DB, name string) dbCounters {
	b.Helper()
	var c dbCounters
	if err := admin.QueryRow(`SELECT xact_commit + xact_rollback, tup_inserted + tup_updated + tup_deleted FROM pg_stat_database WHERE datname = $1`, name).Scan(&c.xacts, &c.written); err != nil {
		b.Fatalf("pg_stat_database %s: %v", name, err)
	}
	return c
}

// orderCost is what one order costs each service's database.
type orderCost struct {
	services []string
	xacts    map[string]float64 // transactions per order, net of background
	written  map[string]float64 // rows inserted, updated or deleted per order
	polls    float64            // order(id) polls per order (reads in the order database)
}

func (c orderCost) totalXacts() (t float64) {
	for _, v := range c.xacts {
		t += v
	}
	return t
}

func (c orderCost) String() string {
	var sb strings.Builder
	for _, s := range c.services {
		fmt.Fprintf(&sb, "%s %.1f xacts %.1f rows; ", s, c.xacts[s], c.written[s])
	}
	fmt.Fprintf(&sb, "total %.1f xacts/order, of which %.1f are the benchmark's own order(id) polls", c.totalXacts(), c.polls)
	return sb.String()
}

// measureOrderCost places costOrders orders and reads from
// pg_stat_database how many transactions and row writes each service's
// database made per order, net of the idle background (outbox relays
// polling, the payment worker's claim loop) measured just before.
func measureOrderCost(b *testing.B, m *mart, products, tokens []string) orderCost {
	b.Helper()
	admin, err := sql.Open("pgx", pgtest.ServerURL())
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close()
	services := make([]string, 0, len(m.sys.Databases))
	for s := range m.sys.Databases {
		services = append(services, s)
	}
	slices.Sort(services)
	snap := func() map[string]dbCounters {
		out := map[string]dbCounters{}
		for _, s := range services {
			out[s] = readCounters(b, admin, dbName(b, m.sys.Databases[s]))
		}
		return out
	}
	time.Sleep(statsFlush)
	idle0 := snap()
	time.Sleep(statsFlush)
	idle1 := snap()
	start := time.Now()
	r := runOrders(b, m.sys.RouterURL, products, tokens, costOrders, 0)
	if r.errors > 0 {
		b.Fatalf("cost run: %d errors, the first: %v", r.errors, r.firstErr)
	}
	time.Sleep(statsFlush)
	elapsed := time.Since(start).Seconds()
	end := snap()
	c := orderCost{services: services, xacts: map[string]float64{}, written: map[string]float64{}, polls: float64(r.polls) / costOrders}
	for _, s := range services {
		bgX := float64(idle1[s].xacts-idle0[s].xacts) / statsFlush.Seconds()
		bgW := float64(idle1[s].written-idle0[s].written) / statsFlush.Seconds()
		c.xacts[s] = (float64(end[s].xacts-idle1[s].xacts) - bgX*elapsed) / costOrders
		c.written[s] = (float64(end[s].written-idle1[s].written) - bgW*elapsed) / costOrders
	}
	return c
}
