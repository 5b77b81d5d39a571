package scanner

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

// The defaults are what config.Default and clusterconf.Defaults give (and
// README and config/example.yaml document), and they pass.
func TestDefaults(t *testing.T) {
	p, l := DefaultPolicy(), DefaultLocal()
	if p.Thresholds != (Thresholds{Quarantine: 6, Reject: 15}) || p.VirusAction != ActionQuarantine || p.OnLimit != ActionQuarantine ||
		len(p.Rules) != 0 || p.Rules == nil || len(p.Attachments.BlockedExtensions) != 0 || len(p.Attachments.BlockedTypes) != 0 ||
		!p.Attachments.DoubleExtensions || !p.Attachments.ScanArchives || p.MaxMIMEDepth != 10 || p.MaxMIMEParts != 500 {
		t.Errorf("DefaultPolicy() = %+v", p)
	}
	if l != (Local{Workers: 0, Queue: 64, Timeout: l.Timeout}) || l.Timeout.Duration != time.Minute {
		t.Errorf("DefaultLocal() = %+v", l)
	}
	if err := p.Validate(); err != nil {
		t.Errorf("DefaultPolicy().Validate() = %v", err)
	}
	if err := l.Validate(); err != nil {
		t.Errorf("DefaultLocal().Validate() = %v", err)
	}
}

// Every problem is reported at once, each as a *SettingError keyed
// relative to the policy.
func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(p *Policy)
		want []string // whole problems, in any order; none = valid
	}{
		{"defaults", func(p *Policy) {}, nil},
		{"negative quarantine", func(p *Policy) { p.Thresholds = Thresholds{Quarantine: -1, Reject: 0} }, nil},
		{"thresholds order", func(p *Policy) { p.Thresholds = Thresholds{Quarantine: 5, Reject: 5} },
			[]string{"thresholds: quarantine (5) must be below reject (5)"}},
		{"thresholds not finite", func(p *Policy) { p.Thresholds = Thresholds{Quarantine: math.NaN(), Reject: math.Inf(1)} },
			[]string{"thresholds.quarantine: must be a finite number", "thresholds.reject: must be a finite number"}},
		{"thresholds bounds", func(p *Policy) { p.Thresholds = Thresholds{Quarantine: -1000.5, Reject: 1000.5} },
			[]string{"thresholds.quarantine: must be -1000 to 1000, got -1000.5", "thresholds.reject: must be -1000 to 1000, got 1000.5"}},
		{"actions", func(p *Policy) { p.VirusAction, p.OnLimit = ActionDeliver, "" }, []string{
			`virus_action: "deliver" is not one of quarantine, reject`,
			`on_limit: "" is not one of quarantine, tempfail, reject`,
		}},
		{"rules", func(p *Policy) {
			p.Rules = []string{`OK body /fine/ 1`, `R2 hdr Subject =~ /x/ 1`, `OK body /again/ 1`, `EICAR_TEST body /x/ 1`}
		}, []string{
			`rules[1]: column 4: unknown kind "hdr" (want header, body or rawbody)`,
			"rules[2]: name OK is already used by rules[0]",
			"rules[3]: name EICAR_TEST is a built-in symbol",
		}},
		{"extensions", func(p *Policy) { p.Attachments.BlockedExtensions = []string{".EXE", "tar.gz", "", "a/b"} }, []string{
			`attachments.blocked_extensions[1]: "tar.gz" is not an extension (what follows the last dot of a file name, e.g. exe)`,
			`attachments.blocked_extensions[2]: "" is not an extension (what follows the last dot of a file name, e.g. exe)`,
			`attachments.blocked_extensions[3]: "a/b" is not an extension (what follows the last dot of a file name, e.g. exe)`,
		}},
		{"types", func(p *Policy) { p.Attachments.BlockedTypes = []string{"Image/*", "*/*", "exe", "a b/c"} }, []string{
			`attachments.blocked_types[1]: "*/*" is not a MIME type (type/subtype or type/*)`,
			`attachments.blocked_types[2]: "exe" is not a MIME type (type/subtype or type/*)`,
			`attachments.blocked_types[3]: "a b/c" is not a MIME type (type/subtype or type/*)`,
		}},
		{"mime limits", func(p *Policy) { p.MaxMIMEDepth, p.MaxMIMEParts = 0, MaxMIMEParts+1 }, []string{
			"max_mime_depth: must be positive, got 0",
			"max_mime_parts: must be at most 10000, got 10001",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := DefaultPolicy()
			tt.mod(&p)
			checkProblems(t, p.Validate(), tt.want)
		})
	}
}

func TestLocalValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(l *Local)
		want []string
	}{
		{"defaults", func(l *Local) {}, nil},
		{"engines", func(l *Local) {
			l.Clamd, l.Rspamd, l.Spamd = "unix:///run/clamd.sock", "http://127.0.0.1:11333", "tcp://[::1]:783"
			l.RspamdController = "http://127.0.0.1:11334"
		}, nil},
		{"at the bounds", func(l *Local) {
			l.Workers, l.Queue, l.Timeout.Duration, l.SimulatedDelay.Duration = MaxWorkers, MaxQueue, MaxTimeout, MaxSimulatedDelay
		}, nil},
		{"negative", func(l *Local) {
			l.Workers, l.Queue, l.Timeout.Duration, l.SimulatedDelay.Duration = -1, -2, 0, -time.Second
		}, []string{
			"workers: must be 0 (number of CPUs) or more, got -1",
			"queue: must be 0 or more, got -2",
			"timeout: must be a positive duration, got 0s",
			"simulated_delay: must be 0 to 1m, got -1s",
		}},
		{"past the bounds", func(l *Local) {
			l.Workers, l.Queue, l.Timeout.Duration, l.SimulatedDelay.Duration = 100000000, MaxQueue+1, MaxTimeout+1, MaxSimulatedDelay+1
		}, []string{
			"workers: must be at most 1024, got 100000000",
			"queue: must be at most 100000, got 100001",
			"timeout: must be at most 1h0m0s, got 1h0m0.000000001s",
			"simulated_delay: must be 0 to 1m, got 1m0.000000001s",
		}},
		{"engine addresses", func(l *Local) {
			l.Clamd, l.Rspamd, l.Spamd = "http://x:3310", "http://rspamd", "unix://"
			l.RspamdController = "tcp://127.0.0.1:99999"
		}, []string{
			`clamd: engine address "http://x:3310": scheme "http" not accepted; want tcp://host:port or unix:///path`,
			`rspamd: engine address "http://rspamd": want host:port`,
			`rspamd_controller: engine address "tcp://127.0.0.1:99999": scheme "tcp" not accepted; want http://host:port`,
			`spamd: engine address "unix://": want unix:///absolute/path`,
		}},
		{"controller without the worker", func(l *Local) { l.RspamdController = "http://127.0.0.1:11334" }, []string{
			"rspamd_controller: needs scanner.rspamd (the normal worker) as well",
		}},
		{"engine port", func(l *Local) { l.Clamd = "tcp://127.0.0.1:70000" }, []string{
			`clamd: "tcp://127.0.0.1:70000": port must be 1 to 65535`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := DefaultLocal()
			tt.mod(&l)
			checkProblems(t, l.Validate(), tt.want)
		})
	}
}

// checkProblems wants err to join exactly the SettingErrors want.
func checkProblems(t *testing.T, err error, want []string) {
	t.Helper()
	var got []string
	for _, e := range Under("x", err) {
		var se *SettingError
		if !errors.As(e, &se) {
			t.Errorf("%v is not a *SettingError", e)
			continue
		}
		got = append(got, strings.TrimPrefix(se.Error(), "x."))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Under names each problem under the prefix, as the node file and the
// cluster configuration report them.
func TestUnder(t *testing.T) {
	p := DefaultPolicy()
	p.MaxMIMEParts, p.VirusAction = 0, "drop"
	errs := Under("scanner", p.Validate())
	if len(errs) != 2 || errs[0].Error() != `scanner.virus_action: "drop" is not one of quarantine, reject` ||
		errs[1].Error() != "scanner.max_mime_parts: must be positive, got 0" {
		t.Errorf("Under = %q", errs)
	}
	if Under("scanner", nil) != nil {
		t.Error("Under of nil is not empty")
	}
	other := errors.New("other")
	if errs := Under("scanner", other); len(errs) != 1 || errs[0] != other {
		t.Errorf("Under of another error = %v", errs)
	}
}

// A policy's values are the scanner's: a quarantine threshold of 0 is 0
// (every message scoring 0 or more is quarantined), not "the default" (6)
// that the options' zero used to stand for while the node file took 0 as
// written.
func TestZeroThresholdIsZero(t *testing.T) {
	o := DefaultOptions()
	o.Thresholds = Thresholds{Quarantine: 0, Reject: 15}
	if v := scanWith(t, o, newMsg(textMsg("hello"))); v.Action != ActionQuarantine || v.Class != classSpam {
		t.Errorf("score 0 with quarantine threshold 0: %s", describe(v))
	}
}

// Normalize lower-cases and strips what the file may hold, in new slices.
func TestPolicyNormalize(t *testing.T) {
	p := DefaultPolicy()
	p.Attachments.BlockedExtensions = []string{" .EXE", "Js"}
	p.Attachments.BlockedTypes = []string{"Application/X-MSDownload "}
	p.Rules = nil
	n := p.Normalize()
	if strings.Join(n.Attachments.BlockedExtensions, ",") != "exe,js" || n.Attachments.BlockedTypes[0] != "application/x-msdownload" || n.Rules == nil {
		t.Errorf("Normalize = %+v", n)
	}
	if p.Attachments.BlockedExtensions[0] != " .EXE" {
		t.Error("Normalize changed its receiver's list")
	}
	c := n.Clone()
	c.Attachments.BlockedTypes[0] = "x/y"
	if n.Attachments.BlockedTypes[0] != "application/x-msdownload" {
		t.Error("Clone shares a list")
	}
}
