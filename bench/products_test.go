package bench

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/onlinemart/mart/internal/postgres/pgtest"
)

// Requests per page size when counting transactions.
const sqlBatch = 100

// statsFlush is how long to wait for Postgres to publish a backend's
// counters in pg_stat_database: a busy backend flushes them at most once a
// second, an idle one 10s after its last flush (PGSTAT_IDLE_INTERVAL).
const statsFlush = 11 * time.Second

const productsStock = `query($n: Int!) { products(first: $n) { edges { node { id name stock { available } } } } }`

// BenchmarkProductsStockSQL is the N+1 check of the product list with
// stock: products(first: N) through the router, whose stock comes from the
// inventory subgraph through an _entities fetch. One op is one request.
//
// Besides ns/op it reports sql-xacts/req: the transactions the product
// and inventory databases committed (or rolled back) per request,
// measured with pg_stat_database around a batch of sqlBatch requests,
// less the background rate (outbox relays' polls) measured while idle.
// Every statement bun runs outside a transaction is a transaction of its
// own, so this counts the statements of a request (a read inside an
// explicit transaction counts once). The benchmark fails when the count
// at N=100 exceeds the count at N=10 by half a statement or more: the
// stock of a page must be one batched query, not one per product.
func BenchmarkProductsStockSQL(b *testing.B) {
	m := startMart(b)
	m.products(b, "LIST", 100, 5)
	list := func(n int) error { return listProducts(m.sys.RouterURL, n) }
	admin, err := sql.Open("pgx", pgtest.ServerURL())
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close()
	dbs := []string{dbName(b, m.sys.Databases["product"]), dbName(b, m.sys.Databases["inventory"])}

	// Let the setup's events settle and its counters be flushed, then
	// measure the background for one flush interval.
	time.Sleep(statsFlush)
	s0 := xacts(b, admin, dbs)
	time.Sleep(statsFlush)
	s1 := xacts(b, admin, dbs)
	background := float64(s1.total()-s0.total()) / statsFlush.Seconds()
	bgDB := []float64{float64(s1[0]-s0[0]) / statsFlush.Seconds(), float64(s1[1]-s0[1]) / statsFlush.Seconds()}

	sizes := []int{10, 50, 100}
	perReq := map[int]float64{}
	perDB := map[int][2]float64{}
	for _, n := range sizes {
		before := xacts(b, admin, dbs)
		start := time.Now()
		for range sqlBatch {
			if err := list(n); err != nil {
				b.Fatal(err)
			}
		}
		time.Sleep(statsFlush)
		after := xacts(b, admin, dbs)
		elapsed := time.Since(start).Seconds()
		perReq[n] = (float64(after.total()-before.total()) - background*elapsed) / sqlBatch
		perDB[n] = [2]float64{
			(float64(after[0]-before[0]) - bgDB[0]*elapsed) / sqlBatch,
			(float64(after[1]-before[1]) - bgDB[1]*elapsed) / sqlBatch,
		}
	}

	for _, n := range sizes {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			for b.Loop() {
				if err := list(n); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(perReq[n], "sql-xacts/req")
			b.ReportMetric(perDB[n][0], "product-xacts/req")
			b.ReportMetric(perDB[n][1], "inventory-xacts/req")
		})
	}
	b.Logf("background %.2f xacts/s; per request (net of background): %v", background, perReq)
	var rows [][]string
	for _, n := range sizes {
		rows = append(rows, []string{fmt.Sprint(n), fmt.Sprintf("%.2f", perReq[n]), fmt.Sprintf("%.2f", perDB[n][0]), fmt.Sprintf("%.2f", perDB[n][1])})
	}
	writeTable(b, "40-nplus1", table{
		Title: "N+1 check",
		Intro: fmt.Sprintf("`BenchmarkProductsStockSQL`: statements per request of `products(first: N) { … stock { available } }` through the router, "+
			"%d requests per N, from `pg_stat_database` net of the background. Constant in N: the page's stock is one batched query.", sqlBatch),
		Header: []string{"N", "statements/request", "product db", "inventory db"},
		Rows:   rows,
	})
	if perReq[100] >= perReq[10]+0.5 {
		b.Fatalf("N+1: %.2f transactions per request at N=100 against %.2f at N=10", perReq[100], perReq[10])
	}
}

// listProducts asks for a page of n products with their stock and checks
// that it got n.
func listProducts(url string, n int) error {
	var out struct {
		Products struct {
			Edges []struct {
				Node struct {
					ID    string
					Stock *struct{ Available int }
				}
			}
		}
	}
	if err := call(context.Background(), url, "", productsStock, map[string]any{"n": n}, &out); err != nil {
		return err
	}
	if len(out.Products.Edges) != n || out.Products.Edges[0].Node.Stock == nil {
		return fmt.Errorf("products(first: %d): %d edges", n, len(out.Products.Edges))
	}
	return nil
}

type xactCounts []int64

func (x xactCounts) total() int64 {
	var t int64
	for _, v := range x {
		t += v
	}
	return t
}

// xacts reads xact_commit + xact_rollback of each database.
func xacts(b *testing.B, admin *sql.DB, dbs []string) xactCounts {
	b.Helper()
	out := make(xactCounts, len(dbs))
	for i, name := range dbs {
		if err := admin.QueryRow(`SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1`, name).Scan(&out[i]); err != nil {
			b.Fatalf("pg_stat_database %s: %v", name, err)
		}
	}
	return out
}

// dbName is the database a connection URL names.
func dbName(b *testing.B, url string) string {
	b.Helper()
	i := strings.LastIndex(url, "/")
	if i < 0 {
		b.Fatalf("no database in %q", url)
	}
	name, _, _ := strings.Cut(url[i+1:], "?")
	return name
}
