package digest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Action is what a link lets its recipient do.
type Action byte

const (
	ActRelease Action = 1 + iota // release one item to the recipient
	ActDelete                    // delete (or dismiss) one item for the recipient
	ActList                      // see the recipient's quarantine
	ActOptOut                    // stop (or resume) the recipient's digests
)

func (a Action) String() string {
	switch a {
	case ActRelease:
		return "release"
	case ActDelete:
		return "delete"
	case ActList:
		return "list"
	case ActOptOut:
		return "optout"
	}
	return fmt.Sprintf("action(%d)", byte(a))
}

// itemAction reports whether a names one item.
func (a Action) itemAction() bool { return a == ActRelease || a == ActDelete }

// Token is what a signed link says.
type Token struct {
	Key     string // the signing key's ID
	Action  Action
	Rcpt    string // lower-cased
	Item    string // "" for list and optout
	Expires time.Time
}

const (
	tokenVersion = 1
	macLen       = sha256.Size
	keyIDLen     = 4 // bytes; 8 hex digits
	// maxToken bounds what Parse looks at: longer than any token it makes.
	maxToken = 1024
)

// Errors of Verify; each refusal wraps one.
var (
	ErrBadToken    = errors.New("the link is not valid")     // malformed or tampered
	ErrExpired     = errors.New("the link has expired")      // past its expiry
	ErrUnknownKey  = errors.New("the link's key is retired") // signed by a key no longer kept
	ErrWrongAction = errors.New("the link is for another action")
)

// Sign returns t, with t.Key set to k's, signed with k.
func Sign(k Key, t Token) (string, error) {
	t.Key = k.ID
	body, err := t.marshal()
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(append(body, mac(k.Secret, body)...)), nil
}

func mac(secret, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write(body)
	return h.Sum(nil)
}

func (t Token) marshal() ([]byte, error) {
	id, err := hex.DecodeString(t.Key)
	if err != nil || len(id) != keyIDLen {
		return nil, fmt.Errorf("sign link: key id %q is not %d hex digits", t.Key, 2*keyIDLen)
	}
	if err := checkRcpt(t.Rcpt); err != nil {
		return nil, fmt.Errorf("sign link: %w", err)
	}
	if t.Action.itemAction() != (t.Item != "") || len(t.Item) > maxItemID || t.Action < ActRelease || t.Action > ActOptOut {
		return nil, fmt.Errorf("sign link: action %s with item %q", t.Action, t.Item)
	}
	b := []byte{tokenVersion}
	b = append(b, id...)
	b = append(b, byte(t.Action))
	b = binary.BigEndian.AppendUint64(b, uint64(t.Expires.Unix()))
	b = binary.AppendUvarint(b, uint64(len(t.Rcpt)))
	b = append(b, t.Rcpt...)
	b = binary.AppendUvarint(b, uint64(len(t.Item)))
	b = append(b, t.Item...)
	return b, nil
}

// Parse decodes a token without checking its signature: the fields, the
// signed bytes and the MAC. Only for Verify and tests; what it returns
// is the sender's word.
func Parse(s string) (t Token, body, sum []byte, err error) {
	if len(s) > maxToken {
		return Token{}, nil, nil, fmt.Errorf("%w: too long", ErrBadToken)
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(raw) < macLen+1 {
		return Token{}, nil, nil, fmt.Errorf("%w: not a token", ErrBadToken)
	}
	body, sum = raw[:len(raw)-macLen], raw[len(raw)-macLen:]
	bad := func(what string) (Token, []byte, []byte, error) {
		return Token{}, nil, nil, fmt.Errorf("%w: %s", ErrBadToken, what)
	}
	if body[0] != tokenVersion {
		return bad("unknown version")
	}
	rest := body[1:]
	if len(rest) < keyIDLen+1+8 {
		return bad("short")
	}
	t.Key = hex.EncodeToString(rest[:keyIDLen])
	t.Action = Action(rest[keyIDLen])
	exp := binary.BigEndian.Uint64(rest[keyIDLen+1:])
	if exp > 1<<40 { // beyond year 36000: no token of ours
		return bad("expiry out of range")
	}
	t.Expires = time.Unix(int64(exp), 0).UTC()
	rest = rest[keyIDLen+1+8:]
	var fields [2]string
	for i := range fields {
		n, w := binary.Uvarint(rest)
		if w <= 0 || n > uint64(len(rest)-w) {
			return bad("truncated field")
		}
		fields[i] = string(rest[w : w+int(n)])
		rest = rest[w+int(n):]
	}
	if len(rest) != 0 {
		return bad("trailing bytes")
	}
	t.Rcpt, t.Item = fields[0], fields[1]
	if checkRcpt(t.Rcpt) != nil || t.Action < ActRelease || t.Action > ActOptOut ||
		t.Action.itemAction() != (t.Item != "") || len(t.Item) > maxItemID {
		return bad("fields out of range")
	}
	return t, body, sum, nil
}

// Verify checks s against keys for action at now: a known key, a MAC
// that matches (compared in constant time), the action, the expiry. The
// caller checks what the token names (the item and its recipients).
func Verify(keys []Key, s string, action Action, now time.Time) (Token, error) {
	t, body, sum, err := Parse(s)
	if err != nil {
		return Token{}, err
	}
	var key *Key
	for i := range keys {
		if keys[i].ID == t.Key {
			key = &keys[i]
		}
	}
	if key == nil {
		return Token{}, ErrUnknownKey
	}
	if !hmac.Equal(sum, mac(key.Secret, body)) {
		return Token{}, fmt.Errorf("%w: signature", ErrBadToken)
	}
	// Only a signed token's fields mean anything: checked after the MAC.
	if t.Action != action {
		return Token{}, fmt.Errorf("%w: %s, not %s", ErrWrongAction, t.Action, action)
	}
	if !now.Before(t.Expires) {
		return Token{}, ErrExpired
	}
	return t, nil
}
