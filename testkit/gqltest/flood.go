package gqltest

import (
	"context"
	"net/http"
	"strings"
	"sync"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
)

// FloodConnections opens n graphql-transport-ws connections to url (http
// or ws scheme) at once and holds each until all have been answered: it
// counts those acknowledged and those the server closed with 1013 (try
// again later), calls whileOpen with every connection still open, then
// closes them all.
func FloodConnections(ctx context.Context, url string, n int, whileOpen func()) (acked, tryLater int) {
	url = "ws" + strings.TrimPrefix(url, "http")
	var mu sync.Mutex
	var all, answered sync.WaitGroup
	release := make(chan struct{})
	answered.Add(n)
	for range n {
		all.Go(func() {
			c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}, HTTPHeader: http.Header{}})
			if err != nil {
				answered.Done()
				return
			}
			defer c.CloseNow()
			var m wsMessage
			if err = wsjson.Write(ctx, c, wsMessage{Type: "connection_init"}); err == nil {
				err = wsjson.Read(ctx, c, &m)
			}
			mu.Lock()
			switch {
			case err == nil && m.Type == "connection_ack":
				acked++
			case websocket.CloseStatus(err) == 1013:
				tryLater++
			}
			mu.Unlock()
			answered.Done()
			<-release
		})
	}
	answered.Wait()
	if whileOpen != nil {
		whileOpen()
	}
	close(release)
	all.Wait()
	return acked, tryLater
}
