// Package logging builds the services' slog loggers: JSON lines with the
// service name on every line, or readable text on a terminal, and the
// trace_id and span_id of a traced request or message on each of its lines.
package logging

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/mattn/go-isatty"
	"go.opentelemetry.io/otel/trace"
)

// New returns a logger for service at level (debug, info, warn, error) in
// format json or text; "" picks text when w is a terminal, JSON otherwise.
func New(w io.Writer, service, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToLower(level))); err != nil {
		return nil, fmt.Errorf("LOG_LEVEL %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	if format == "" {
		format = "json"
		if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			format = "text"
		}
	}
	var h slog.Handler
	switch format {
	case "json":
		h = slog.NewJSONHandler(w, opts)
	case "text":
		h = slog.NewTextHandler(w, opts)
	default:
		return nil, fmt.Errorf("LOG_FORMAT %q: want json or text", format)
	}
	return slog.New(traced{h}).With("service", service), nil
}

// traced adds the trace_id and span_id of the context's span, if it has
// one, to the lines logged with a context (InfoContext, Log…).
type traced struct{ slog.Handler }

func (h traced) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r = r.Clone()
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traced) WithAttrs(as []slog.Attr) slog.Handler { return traced{h.Handler.WithAttrs(as)} }
func (h traced) WithGroup(name string) slog.Handler    { return traced{h.Handler.WithGroup(name)} }

// Check reports, together, a level and a format that New would refuse, so
// that a configuration names them with its other problems, before any log.
func Check(level, format string) error {
	_, levelErr := New(io.Discard, "", level, "json")
	_, formatErr := New(io.Discard, "", "info", format)
	return errors.Join(levelErr, formatErr)
}
