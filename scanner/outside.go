package scanner

import "context"

// An Engine is an outside scanner (clamd, Rspamd, spamd) asked about every
// message, concurrently with the other engines and the built-in checks.
// The clients in engines/... implement it; the node makes them from the
// configuration and hands them to the Pool in Options.
type Engine interface {
	// Name is the engine's name in symbols, metrics, logs and settings
	// ("clamd", "rspamd", "spamd").
	Name() string
	// Scan asks the engine about m within ctx. An error means the engine
	// did not give a verdict (down, too slow, a reply not understood, the
	// message over its size limit): it is never read as clean; what
	// happens then is the engine's on_error.
	Scan(ctx context.Context, m *Message) (EngineResult, error)
	// Ping checks that the engine answers, for health reports.
	Ping(ctx context.Context) error
}

// EngineResult is what an engine said of one message, mapped into
// mxgate's terms by the engine's client.
type EngineResult struct {
	// Symbols are the engine's findings with the scores it gave, named
	// with the engine's prefix (CLAMD_, RSPAMD_, SPAMD_) so that they
	// cannot collide with the built-in ones or each other's.
	Symbols []Symbol
	// Viruses found, names as the engine gave them (e.g.
	// "Eicar-Signature.UNOFFICIAL"); any virus gets the virus action.
	Viruses []string
	// Action is the engine's own verdict where it has one (Rspamd): ""
	// for none, else one of the Action constants. How it combines with
	// mxgate's own thresholds is the scanner's merge.
	Action Action
	// Reason and Class go with an Action that decides the message: one
	// short line safe to show the client ("" = the generic text) and the
	// verdict's class ("" = spam; "policy" for a sender's published
	// policy such as DMARC's).
	Reason string
	Class  string
	// Score is the engine's total where it keeps one (Rspamd, spamd), for
	// logs and the merge; Symbols carry the same points itemised.
	Score float64
	// Headers are header lines ("Name: value", no CRLF) the engine asks
	// to add on delivery (Rspamd's milter.add_headers); Subject a
	// rewritten subject ("" = unchanged).
	Headers []string
	Subject string
}
