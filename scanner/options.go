package scanner

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"strings"
	"time"
)

// Options configure a Pool. Start from DefaultOptions: the booleans and the
// lists have non-zero defaults there. Zero numbers mean "the default".
type Options struct {
	NodeID string // written into X-Mxgate-Node and Verdict.Node

	Workers int           // scans at once; 0 = runtime.NumCPU()
	Queue   int           // scans waiting beyond the busy workers; full → ErrOverloaded
	Timeout time.Duration // per scan, queue wait included; 0 = 60s

	// Score thresholds; 0 = default (6 and 15). Reject must not be below
	// quarantine.
	QuarantineThreshold float64
	RejectThreshold     float64

	// VirusAction is what a virus finding does whatever the score:
	// ActionQuarantine ("" too) or ActionReject.
	VirusAction Action

	// OnLimit is what a message gets when part of it could not be scanned
	// because it lies past a limit below (MIME parts or depth, archive
	// bytes, entries or nesting, an unsupported compression method): never
	// delivery. ActionQuarantine ("" too), ActionTempfail or ActionReject.
	// A virus found before the limit still gets VirusAction.
	OnLimit Action

	// Rules in the rule language, one per string; see ParseRule.
	Rules []string

	// Attachment policy. Extensions are matched case-insensitively with or
	// without the leading dot. A nil list means the default list, an empty
	// non-nil list means none.
	BlockedExtensions     []string
	BlockedTypes          []string // MIME types, e.g. application/x-msdownload
	BlockDoubleExtensions bool     // "invoice.pdf.exe"
	ScanArchives          bool     // look inside zip, gzip and tar attachments (nested too)

	// Limits that keep one message's cost bounded; 0 = default.
	MaxMIMEDepth      int   // nesting of multiparts and message/rfc822 (10)
	MaxMIMEParts      int   // MIME entities per message (500)
	MaxArchiveEntries int   // archive entries and uuencoded files per message, nested ones included (1000)
	MaxArchiveBytes   int64 // uncompressed bytes inspected per message, every layer counted (50 MiB)

	// MaxMessageBytes is the size over which a message gets the
	// informational SIZE_LARGE symbol (10 MiB); the SMTP front end enforces
	// the hard limit. Negative disables the symbol.
	MaxMessageBytes int64

	// SimulatedDelay is a fixed wait added to every scan inside its worker
	// slot, so it occupies a worker the way a call to a remote engine
	// (clamd, rspamd) would. It stands in for such an engine in benchmarks
	// of the cluster; the caller's context and Timeout cut it short. 0 =
	// none.
	SimulatedDelay time.Duration

	Logger *slog.Logger // nil = slog.Default()
}

// defaultBlockedExtensions are executable or script types a mail client runs
// on a double click.
var defaultBlockedExtensions = []string{
	"exe", "scr", "bat", "cmd", "com", "pif", "vbs", "vbe", "js", "jse", "wsf", "wsh",
	"hta", "msi", "msp", "cpl", "jar", "lnk", "ps1", "reg", "iso", "img", "vhd", "dll",
	"sys", "application", "gadget",
}

var defaultBlockedTypes = []string{
	"application/x-msdownload",
	"application/x-dosexec",
	"application/x-ms-shortcut",
	"application/x-msdos-program",
	"application/x-ms-installer",
	"application/x-msi",
	"application/x-ms-application",
	"application/vnd.microsoft.portable-executable",
	"application/hta",
}

const (
	defaultTimeout             = 60 * time.Second
	defaultQueue               = 100
	defaultQuarantineThreshold = 6
	defaultRejectThreshold     = 15
	defaultMaxMIMEDepth        = 10
	defaultMaxMIMEParts        = 500
	defaultMaxArchiveEntries   = 1000
	defaultMaxArchiveBytes     = 50 << 20
	defaultMaxMessageBytes     = 10 << 20
)

// DefaultOptions returns the documented defaults.
func DefaultOptions() Options {
	return Options{
		Workers:               runtime.NumCPU(),
		Queue:                 defaultQueue,
		Timeout:               defaultTimeout,
		QuarantineThreshold:   defaultQuarantineThreshold,
		RejectThreshold:       defaultRejectThreshold,
		VirusAction:           ActionQuarantine,
		OnLimit:               ActionQuarantine,
		BlockedExtensions:     append([]string(nil), defaultBlockedExtensions...),
		BlockedTypes:          append([]string(nil), defaultBlockedTypes...),
		BlockDoubleExtensions: true,
		ScanArchives:          true,
		MaxMIMEDepth:          defaultMaxMIMEDepth,
		MaxMIMEParts:          defaultMaxMIMEParts,
		MaxArchiveEntries:     defaultMaxArchiveEntries,
		MaxArchiveBytes:       defaultMaxArchiveBytes,
		MaxMessageBytes:       defaultMaxMessageBytes,
	}
}

// normalize fills defaults and reports every invalid setting at once.
func (o Options) normalize() (Options, error) {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if o.Workers == 0 {
		o.Workers = runtime.NumCPU()
	}
	if o.Workers < 0 {
		bad("workers: %d is negative", o.Workers)
	}
	if o.Queue < 0 {
		bad("queue: %d is negative", o.Queue)
	}
	if o.Timeout == 0 {
		o.Timeout = defaultTimeout
	}
	if o.Timeout < 0 {
		bad("timeout: %s is negative", o.Timeout)
	}
	if o.QuarantineThreshold == 0 {
		o.QuarantineThreshold = defaultQuarantineThreshold
	}
	if o.RejectThreshold == 0 {
		o.RejectThreshold = defaultRejectThreshold
	}
	if math.IsNaN(o.QuarantineThreshold) || math.IsNaN(o.RejectThreshold) {
		bad("thresholds: not a number")
	} else if o.RejectThreshold < o.QuarantineThreshold {
		bad("thresholds: reject %g is below quarantine %g", o.RejectThreshold, o.QuarantineThreshold)
	}
	switch o.VirusAction {
	case "":
		o.VirusAction = ActionQuarantine
	case ActionQuarantine, ActionReject:
	default:
		bad("virus action: %q (want quarantine or reject)", o.VirusAction)
	}
	switch o.OnLimit {
	case "":
		o.OnLimit = ActionQuarantine
	case ActionQuarantine, ActionTempfail, ActionReject:
	default:
		bad("on limit: %q (want quarantine, tempfail or reject)", o.OnLimit)
	}
	if o.BlockedExtensions == nil {
		o.BlockedExtensions = defaultBlockedExtensions
	}
	for _, e := range o.BlockedExtensions {
		if e = strings.TrimPrefix(e, "."); e == "" || strings.ContainsAny(e, "./\\ \t") {
			bad("blocked extensions: %q is not an extension", e)
		}
	}
	if o.BlockedTypes == nil {
		o.BlockedTypes = defaultBlockedTypes
	}
	for _, t := range o.BlockedTypes {
		if i := strings.IndexByte(t, '/'); i <= 0 || i == len(t)-1 || strings.ContainsAny(t, " \t;") {
			bad("blocked types: %q is not a MIME type", t)
		}
	}
	intDefault(&o.MaxMIMEDepth, defaultMaxMIMEDepth, "max MIME depth", bad)
	intDefault(&o.MaxMIMEParts, defaultMaxMIMEParts, "max MIME parts", bad)
	intDefault(&o.MaxArchiveEntries, defaultMaxArchiveEntries, "max archive entries", bad)
	if o.MaxArchiveBytes == 0 {
		o.MaxArchiveBytes = defaultMaxArchiveBytes
	}
	if o.MaxArchiveBytes < 0 {
		bad("max archive bytes: %d is negative", o.MaxArchiveBytes)
	}
	if o.SimulatedDelay < 0 {
		bad("simulated delay: %s is negative", o.SimulatedDelay)
	}
	if o.MaxMessageBytes == 0 {
		o.MaxMessageBytes = defaultMaxMessageBytes
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.checkBounds(bad)
	return o, errors.Join(errs...)
}

func intDefault(v *int, def int, name string, bad func(string, ...any)) {
	if *v == 0 {
		*v = def
	}
	if *v < 0 {
		bad("%s: %d is negative", name, *v)
	}
}
