package scanner

import (
	"strings"
	"testing"
	"time"
)

// Every numeric option passes at its bound and is refused one step past it,
// before anything is allocated for it, with the option named.
func TestOptionBounds(t *testing.T) {
	tests := []struct {
		name string
		set  func(o *Options, past int)
	}{
		{"workers", func(o *Options, past int) { o.Workers = maxWorkers + past }},
		{"queue", func(o *Options, past int) { o.Queue = maxQueue + past }},
		{"timeout", func(o *Options, past int) { o.Timeout = maxTimeout + time.Duration(past) }},
		{"simulated delay", func(o *Options, past int) { o.SimulatedDelay = maxTimeout + time.Duration(past) }},
		{"reject threshold", func(o *Options, past int) { o.RejectThreshold = maxThreshold + float64(past)/4 }},
		{"quarantine threshold", func(o *Options, past int) { o.QuarantineThreshold = -maxThreshold - float64(past)/4 }},
		{"max MIME depth", func(o *Options, past int) { o.MaxMIMEDepth = maxMIMEDepth + past }},
		{"max MIME parts", func(o *Options, past int) { o.MaxMIMEParts = maxMIMEParts + past }},
		{"max archive entries", func(o *Options, past int) { o.MaxArchiveEntries = maxArchiveEntries + past }},
		{"max archive bytes", func(o *Options, past int) { o.MaxArchiveBytes = maxArchiveBytes + int64(past) }},
		{"max message bytes", func(o *Options, past int) { o.MaxMessageBytes = maxMessageBytes + int64(past) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := DefaultOptions()
			tt.set(&o, 0)
			if _, err := o.normalize(); err != nil {
				t.Errorf("at the bound: %v", err)
			}
			o = DefaultOptions()
			tt.set(&o, 1)
			_, err := o.normalize()
			if err == nil || !strings.HasPrefix(err.Error(), tt.name+": ") {
				t.Errorf("one past the bound: %v, want an error naming %s", err, tt.name)
			}
		})
	}
}
