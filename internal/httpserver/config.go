package httpserver

import (
	"time"

	"github.com/onlinemart/mart/internal/envvar"
)

// Timeouts bound every connection of a Server and its shutdown; zero
// means the Default… value. A connection hijacked by a handler (a
// websocket) is exempt from the connection timeouts once hijacked.
type Timeouts struct {
	ReadHeaderTimeout time.Duration // to read a request's headers
	ReadTimeout       time.Duration // to read a whole request, body included
	WriteTimeout      time.Duration // from a request's headers to the end of its response
	IdleTimeout       time.Duration // for a keep-alive connection to send its next request
	ShutdownTimeout   time.Duration // to drain requests (and a service's handlers) on shutdown
}

// Vars declares the timeouts every HTTP server of a process shares.
func (t *Timeouts) Vars() []envvar.Var {
	return []envvar.Var{
		envvar.Duration(&t.ReadHeaderTimeout, "MART_HTTP_READ_HEADER_TIMEOUT", "10s", "every HTTP server: time to read a request's headers"),
		envvar.Duration(&t.ReadTimeout, "MART_HTTP_READ_TIMEOUT", "30s", "every HTTP server: time to read a whole request, body included (websockets are exempt once upgraded)"),
		envvar.Duration(&t.WriteTimeout, "MART_HTTP_WRITE_TIMEOUT", "45s", "every HTTP server: time from a request's headers to the end of its response; keep it above MART_REQUEST_TIMEOUT (websockets are exempt)"),
		envvar.Duration(&t.IdleTimeout, "MART_HTTP_IDLE_TIMEOUT", "120s", "every HTTP server: how long a keep-alive connection may wait for its next request"),
		envvar.Duration(&t.ShutdownTimeout, "MART_SHUTDOWN_TIMEOUT", "20s", "time allowed to drain requests and handlers on shutdown"),
	}
}
