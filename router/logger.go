package router

import (
	"context"
	"log/slog"
	"strings"

	"github.com/jensneuse/abstractlogger"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// engineLogger routes the engine's logs into our slog logger. The engine
// speaks abstractlogger, whose only structured backends are zap and logrus,
// so a tiny zap core forwards each entry to slog.
func engineLogger(l *slog.Logger) abstractlogger.Logger {
	core := &slogCore{log: l.With("component", "graphql-engine")}
	return abstractlogger.NewZapLogger(zap.New(core), abstractlogger.DebugLevel)
}

type slogCore struct {
	log    *slog.Logger
	fields []zapcore.Field
}

func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l >= zapcore.ErrorLevel:
		return slog.LevelError
	case l == zapcore.WarnLevel:
		return slog.LevelWarn
	case l == zapcore.InfoLevel:
		return slog.LevelInfo
	default:
		return slog.LevelDebug
	}
}

func (c *slogCore) Enabled(l zapcore.Level) bool {
	return c.log.Enabled(context.Background(), slogLevel(l))
}

func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	return &slogCore{log: c.log, fields: append(c.fields[:len(c.fields):len(c.fields)], fields...)}
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range append(c.fields[:len(c.fields):len(c.fields)], fields...) {
		f.AddTo(enc)
	}
	attrs := make([]slog.Attr, 0, len(enc.Fields))
	level := slogLevel(e.Level)
	for k, v := range enc.Fields {
		attrs = append(attrs, slog.Any(k, v))
		if s, ok := v.(string); ok && level > slog.LevelDebug && isDisconnect(s) {
			level = slog.LevelDebug // a client went away: routine, not an error
		}
	}
	c.log.LogAttrs(context.Background(), level, e.Message, attrs...)
	return nil
}

func (c *slogCore) Sync() error { return nil }

// disconnects are what the engine reports when a client has gone away
// while it was answering or pinging it.
var disconnects = []string{
	"context canceled", "use of closed network connection", "broken pipe",
	"connection reset by peer", "transport client has a closed connection",
}

func isDisconnect(msg string) bool {
	for _, d := range disconnects {
		if strings.Contains(msg, d) {
			return true
		}
	}
	return false
}
