package router

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/jensneuse/abstractlogger"
)

// A client that went away is routine: the engine's errors about writing to
// it are logged at debug level, other engine errors stay errors.
func TestEngineLoggerDemotesDisconnects(t *testing.T) {
	var buf bytes.Buffer
	log := engineLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	for _, e := range []string{
		"write tcp 127.0.0.1:1->127.0.0.1:2: write: broken pipe",
		"read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer",
		"transport client has a closed connection",
	} {
		log.Error("on write event handling", abstractlogger.Error(errors.New(e)))
	}
	if buf.Len() != 0 {
		t.Fatalf("disconnects logged above debug:\n%s", buf.String())
	}
	log.Error("planning failed", abstractlogger.Error(errors.New("unknown field")))
	if !strings.Contains(buf.String(), "level=ERROR") {
		t.Fatalf("a real engine error was not logged as an error: %q", buf.String())
	}
}
