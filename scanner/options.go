package scanner

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
)

// Options configure a Pool: the Policy, which is the same on every node of
// a cluster, this node's Local settings, and limits only code sets. Start
// from DefaultOptions (or fill Policy and Local from the node file and a
// revision: the code-set limits and Logger default when zero).
type Options struct {
	NodeID string // written into X-Mxgate-Node and Verdict.Node

	Policy
	Local

	// Engines are the outside engines asked about every message (the
	// clients the node made from Local's addresses and Policy.Engines'
	// settings); nil = none. It shadows Policy.Engines, the settings:
	// write o.Policy.Engines for those.
	Engines []Engine

	// Limits that keep one message's cost bounded besides the policy's
	// MIME limits; not in the files; 0 = default.
	MaxArchiveEntries int   // archive entries and uuencoded files per message, nested ones included (1000)
	MaxArchiveBytes   int64 // uncompressed bytes inspected per message, every layer counted (50 MiB)

	// MaxMessageBytes is the size over which a message gets the
	// informational SIZE_LARGE symbol (10 MiB); the SMTP front end enforces
	// the hard limit. Negative disables the symbol; 0 = default.
	MaxMessageBytes int64

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
	defaultMaxArchiveEntries = 1000
	defaultMaxArchiveBytes   = 50 << 20
	defaultMaxMessageBytes   = 10 << 20
)

// DefaultOptions are those of a node file without scanner keys.
func DefaultOptions() Options {
	return Options{
		Policy:            DefaultPolicy(),
		Local:             DefaultLocal(),
		MaxArchiveEntries: defaultMaxArchiveEntries,
		MaxArchiveBytes:   defaultMaxArchiveBytes,
		MaxMessageBytes:   defaultMaxMessageBytes,
	}
}

// normalize checks o, reporting every invalid setting at once, and fills
// what is left to a default: the number of workers, the code-set limits,
// the logger. Its policy comes out normalised.
func (o Options) normalize() (Options, error) {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if err := o.Policy.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := o.Local.Validate(); err != nil {
		errs = append(errs, err)
	}
	o.Policy = o.Policy.Normalize()
	if o.Workers == 0 {
		o.Workers = min(runtime.NumCPU(), MaxWorkers)
	}
	intDefault(&o.MaxArchiveEntries, defaultMaxArchiveEntries, "max archive entries", bad)
	if o.MaxArchiveBytes == 0 {
		o.MaxArchiveBytes = defaultMaxArchiveBytes
	}
	if o.MaxArchiveBytes < 0 {
		bad("max archive bytes: %d is negative", o.MaxArchiveBytes)
	}
	if o.MaxMessageBytes == 0 {
		o.MaxMessageBytes = defaultMaxMessageBytes
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	seen := map[string]bool{}
	for i, e := range o.Engines {
		switch {
		case e == nil:
			bad("engine %d is nil", i)
		case seen[e.Name()]:
			bad("engine %s given twice", e.Name())
		default:
			seen[e.Name()] = true
		}
	}
	o.Engines = slices.Clone(o.Engines)
	o.checkLimits(bad)
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
