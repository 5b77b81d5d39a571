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
		{"workers", func(o *Options, past int) { o.Workers = MaxWorkers + past }},
		{"queue", func(o *Options, past int) { o.Queue = MaxQueue + past }},
		{"timeout", func(o *Options, past int) { o.Timeout.Duration = MaxTimeout + time.Duration(past) }},
		{"simulated_delay", func(o *Options, past int) { o.SimulatedDelay.Duration = MaxSimulatedDelay + time.Duration(past) }},
		{"thresholds.reject", func(o *Options, past int) { o.Thresholds.Reject = MaxThreshold + float64(past)/4 }},
		{"thresholds.quarantine", func(o *Options, past int) { o.Thresholds.Quarantine = -MaxThreshold - float64(past)/4 }},
		{"max_mime_depth", func(o *Options, past int) { o.MaxMIMEDepth = MaxMIMEDepth + past }},
		{"max_mime_parts", func(o *Options, past int) { o.MaxMIMEParts = MaxMIMEParts + past }},
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
