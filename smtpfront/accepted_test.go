package smtpfront

import (
	"strings"
	"testing"
)

func TestAcceptedText(t *testing.T) {
	tests := []struct{ downstream, want string }{
		{"2.0.0 Ok", "Ok: queued as ID1"},
		{"Ok", "Ok: queued as ID1"},
		{"", "Ok: queued as ID1"},
		{"2.0.0 Ok: queued as 4XyZ1b2C3d", "Ok: queued as ID1 (downstream: queued as 4XyZ1b2C3d)"},
		{"2.0.0 OK id=1rAbCd-000123-Xy", "Ok: queued as ID1 (downstream: id=1rAbCd-000123-Xy)"},
		{"2.6.0 <m@x> [InternalId=1] Queued mail for delivery", "Ok: queued as ID1 (downstream: <m@x> [InternalId=1] Queued mail for delivery)"},
		{"Okay, got it", "Ok: queued as ID1 (downstream: Okay, got it)"},
		{"2.0.0 Ok: queued\nas X", "Ok: queued as ID1 (downstream: queued as X)"},
		{"2.0.0 Ok \x01\xff", "Ok: queued as ID1 (downstream: ??)"},
	}
	for _, tt := range tests {
		if got := acceptedText("ID1", tt.downstream); got != tt.want {
			t.Errorf("acceptedText(%q) = %q, want %q", tt.downstream, got, tt.want)
		}
	}
}

// FuzzAcceptedText: whatever the downstream says, the reply names our id
// first and stays one line of printable ASCII that fits a reply line
// (RFC 5321 §4.5.3.1.5: 512 octets with the code).
func FuzzAcceptedText(f *testing.F) {
	for _, s := range []string{"2.0.0 Ok", "2.0.0 Ok: queued as ABC", "ok", "", "5.0.0 x", "2.0.0 Ok\r\n250 more"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, downstream string) {
		got := acceptedText("0190ABCDEF012345", downstream)
		if !strings.HasPrefix(got, "Ok: queued as 0190ABCDEF012345") || len(got) > 500 {
			t.Fatalf("acceptedText(%q) = %q", downstream, got)
		}
		for i := 0; i < len(got); i++ {
			if got[i] < 0x20 || got[i] >= 0x7f {
				t.Fatalf("acceptedText(%q) = %q: byte %#x", downstream, got, got[i])
			}
		}
	})
}
