package scanner

import (
	"context"
	"slices"
)

// frontCheck reports what the SMTP front end found before the message
// arrived (Message.Symbols: DNSBL listings at RCPT), so that their scores
// count toward the thresholds like any check's.
type frontCheck struct{}

func (frontCheck) Name() string { return "front" }

func (frontCheck) Check(_ context.Context, p *parsed) (result, error) {
	return result{symbols: slices.Clone(p.msg.Symbols)}, nil
}
