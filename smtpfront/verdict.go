package smtpfront

// maxVerdictText bounds a verdict's reason in a reply: it may come from a
// peer, and one reply line is at most 512 octets (RFC 5321 §4.5.3.1.5).
const maxVerdictText = 200

// verdictText is a verdict's reason as reply text: printable ASCII only,
// bounded, or fallback when there is none.
func verdictText(reason, fallback string) string {
	b := make([]byte, 0, min(len(reason), maxVerdictText))
	for i := 0; i < len(reason) && len(b) < maxVerdictText; i++ {
		if c := reason[i]; c >= 0x20 && c < 0x7f {
			b = append(b, c)
		} else {
			b = append(b, '?')
		}
	}
	if len(b) == 0 {
		return fallback
	}
	return string(b)
}
