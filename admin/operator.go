package admin

// OperatorHeader carries the name of the person a management command acts
// for (user@host, as the CLI finds it). The admin API puts it in front of
// the audit names of changes and releases; it is the client's word, not
// authenticated (the token is).
const OperatorHeader = "X-Mxgate-Operator"

// maxOperator bounds an operator name.
const maxOperator = 64

// validOperator accepts a short name of letters, digits and ._@+- only, so
// that what a client claims can neither forge a second audit field nor
// reach a terminal as a control sequence. Anything else is ignored.
func validOperator(op string) bool {
	if op == "" || len(op) > maxOperator {
		return false
	}
	for _, r := range op {
		if !operatorRune(r) {
			return false
		}
	}
	return true
}

func operatorRune(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	}
	switch r {
	case '.', '_', '@', '+', '-':
		return true
	}
	return false
}

// OperatorName makes a valid operator name of user and host (characters
// outside the accepted set become '_'), or "" when user is empty.
func OperatorName(user, host string) string {
	if user == "" {
		return ""
	}
	name := user
	if host != "" {
		name += "@" + host
	}
	b := []rune(name)
	for i, r := range b {
		if !operatorRune(r) {
			b[i] = '_'
		}
	}
	// Every rune is ASCII now: one byte each.
	return string(b[:min(len(b), maxOperator)])
}
