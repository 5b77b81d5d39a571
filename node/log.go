package node

import (
	"io"
	"log/slog"
)

// NewLogger is a node's logger on w in node.log_format ("json", else
// text) at level. Durations are written as Go duration strings ("1.5s")
// in both formats: slog's JSON handler would write nanoseconds, which no
// reader of a log takes for a duration.
func NewLogger(w io.Writer, format string, level slog.Leveler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: durationString}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func durationString(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}
