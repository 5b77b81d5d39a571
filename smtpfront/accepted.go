package smtpfront

import "strings"

// acceptedText is the text of the 250 for a delivered message: "Ok: queued
// as ID" with mxgate's id, as Postfix words it and as a quarantined
// message's 250 has it, so that the sending MTA's log line ("status=sent
// (250 2.0.0 Ok: queued as …)") leads to mxgate's log and message log. What
// the downstream said beyond a plain "Ok" (its own queue id, as a rule)
// follows in parentheses, on the same single line and bounded.
func acceptedText(id, downstream string) string {
	_, text := splitEnhanced(downstream)
	text = strings.TrimSpace(strings.ReplaceAll(text, "\n", " "))
	// "Ok", "OK: queued as X", "ok, id=X", not "Okay".
	if len(text) >= 2 && strings.EqualFold(text[:2], "ok") && (len(text) == 2 || strings.ContainsRune(":,; ", rune(text[2]))) {
		text = strings.TrimLeft(text[2:], ":,; ")
	}
	if text == "" {
		return "Ok: queued as " + id
	}
	return "Ok: queued as " + id + " (downstream: " + verdictText(text, "") + ")"
}
