package router

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func TestScratch(t *testing.T) {
	start := time.Now()
	sdl, err := Compose(context.Background(), []Subgraph{{"products", "http://a/graphql", "testdata/products.graphqls"}, {"inventory", "http://b/graphql", "testdata/inventory.graphqls"}})
	fmt.Println(sdl, err, time.Since(start))
	rc, _ := composeRouterConfig(context.Background(), []Subgraph{{"products", "http://a/graphql", "testdata/products.graphqls"}, {"inventory", "http://b/graphql", "testdata/inventory.graphqls"}})
	fmt.Println(rc.EngineConfig.GraphqlSchema)
	for _, d := range rc.EngineConfig.DatasourceConfigurations { fmt.Println(d.Id, d.CustomGraphql.Subscription) }
	for _, s := range rc.Subgraphs { fmt.Println(s.Id, s.Name, s.RoutingUrl) }
	_, err = Compose(context.Background(), []Subgraph{{"products", "http://a/graphql", "testdata/products.graphqls"}, {"pricing", "http://b/graphql", "testdata/pricing_incompatible.graphqls"}})
	fmt.Printf("%q\n%v\n", err.Error(), err)
}
