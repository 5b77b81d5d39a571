package digest

import (
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/mxgate/mxgate/testenv"
)

// openBolt is the embedded store in a new file.
func openBolt(t *testing.T) Store {
	t.Helper()
	db := testenv.Bolt(t)
	s, err := NewBolt(db)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testKey(id string, created time.Time) Key {
	return Key{ID: id, Secret: []byte("0123456789abcdef0123456789abcdef" + id), Created: created}
}

// Every way a link can be wrong is refused with its reason, and only the
// link as signed passes.
func TestVerify(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	k1, k2 := testKey("0000aaaa", now.Add(-48*time.Hour)), testKey("0000bbbb", now)
	good := Token{Action: ActRelease, Rcpt: "alice@example.org", Item: "Q1", Expires: now.Add(time.Hour)}
	sign := func(k Key, tok Token) string {
		s, err := Sign(k, tok)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	flip := func(s string, i int) string {
		raw, _ := base64.RawURLEncoding.DecodeString(s)
		raw[i] ^= 1
		return base64.RawURLEncoding.EncodeToString(raw)
	}
	other := good
	other.Rcpt = "bob@example.org"
	otherItem := good
	otherItem.Item = "Q2"
	expired := good
	expired.Expires = now
	list := Token{Action: ActList, Rcpt: "alice@example.org", Expires: now.Add(time.Hour)}
	valid := sign(k2, good)
	for _, tt := range []struct {
		name   string
		keys   []Key
		token  string
		action Action
		want   error  // nil: accepted
		rcpt   string // of an accepted token
		item   string
	}{
		{"as signed", []Key{k1, k2}, valid, ActRelease, nil, "alice@example.org", "Q1"},
		{"older key kept after rotation", []Key{k1, k2}, sign(k1, good), ActRelease, nil, "alice@example.org", "Q1"},
		{"key rotated out", []Key{k2}, sign(k1, good), ActRelease, ErrUnknownKey, "", ""},
		{"no keys", nil, valid, ActRelease, ErrUnknownKey, "", ""},
		{"tampered expiry byte", []Key{k2}, flip(valid, 7), ActRelease, ErrBadToken, "", ""},
		{"tampered recipient byte", []Key{k2}, flip(valid, 16), ActRelease, ErrBadToken, "", ""},
		{"tampered item byte", []Key{k2}, flip(valid, 33), ActRelease, ErrBadToken, "", ""},
		{"tampered MAC", []Key{k2}, flip(valid, 40), ActRelease, ErrBadToken, "", ""},
		{"wrong action", []Key{k2}, valid, ActDelete, ErrWrongAction, "", ""},
		{"list link used to release", []Key{k2}, sign(k2, list), ActRelease, ErrWrongAction, "", ""},
		{"expired", []Key{k2}, sign(k2, expired), ActRelease, ErrExpired, "", ""},
		{"other recipient's link names them", []Key{k2}, sign(k2, other), ActRelease, nil, "bob@example.org", "Q1"},
		{"other item's link names it", []Key{k2}, sign(k2, otherItem), ActRelease, nil, "alice@example.org", "Q2"},
		{"empty", []Key{k2}, "", ActRelease, ErrBadToken, "", ""},
		{"not base64", []Key{k2}, "!!!", ActRelease, ErrBadToken, "", ""},
		{"truncated", []Key{k2}, valid[:len(valid)-3], ActRelease, ErrBadToken, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Verify(tt.keys, tt.token, tt.action, now)
			if tt.want == nil {
				if err != nil || got.Rcpt != tt.rcpt || got.Item != tt.item {
					t.Fatalf("Verify = %+v, %v; want %s %s", got, err, tt.rcpt, tt.item)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %+v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// Sign refuses what no link may say.
func TestSignRefuses(t *testing.T) {
	k := testKey("0000aaaa", time.Now())
	exp := time.Now().Add(time.Hour)
	for _, tt := range []struct {
		name string
		tok  Token
		key  Key
	}{
		{"item action without item", Token{Action: ActRelease, Rcpt: "a@example.org", Expires: exp}, k},
		{"list with item", Token{Action: ActList, Rcpt: "a@example.org", Item: "Q", Expires: exp}, k},
		{"upper-case recipient", Token{Action: ActList, Rcpt: "A@example.org", Expires: exp}, k},
		{"recipient with CR LF", Token{Action: ActList, Rcpt: "a@example.org\r\nBcc: x", Expires: exp}, k},
		{"unknown action", Token{Action: 9, Rcpt: "a@example.org", Expires: exp}, k},
		{"bad key id", Token{Action: ActList, Rcpt: "a@example.org", Expires: exp}, Key{ID: "zz", Secret: k.Secret}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := Sign(tt.key, tt.tok); err == nil {
				t.Fatalf("Sign = %q, want an error", s)
			}
		})
	}
}

// Rotation keeps a key while a link it signed may live, and drops it
// once the key that replaced it is older than the links' lifetime.
func TestRotateDropsOnlyExpiredKeys(t *testing.T) {
	s := openBolt(t)
	ctx := t.Context()
	life := 10 * 24 * time.Hour
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	first, err := signingKeys(ctx, s, t0)
	if err != nil || len(first) != 1 {
		t.Fatalf("first key: %v, %v", first, err)
	}
	k2, dropped, err := Rotate(ctx, s, life, t0.Add(24*time.Hour))
	if err != nil || len(dropped) != 0 {
		t.Fatalf("rotate 1: %v %v", dropped, err)
	}
	// k1 signed until k2 came (day 1): its links live until day 11.
	_, dropped, err = Rotate(ctx, s, life, t0.Add(5*24*time.Hour))
	if err != nil || len(dropped) != 0 {
		t.Fatalf("rotate 2 on day 5 dropped %v, %v; want none (k1's links live until day 11)", dropped, err)
	}
	_, dropped, err = Rotate(ctx, s, life, t0.Add(12*24*time.Hour))
	if err != nil || len(dropped) != 1 || dropped[0] != first[0].ID {
		t.Fatalf("rotate 3 on day 12 dropped %v, %v; want only the first key %s", dropped, err, first[0].ID)
	}
	keys, _ := s.Keys(ctx)
	if len(keys) != 3 || NewestFirst(keys)[2].ID != k2 {
		t.Errorf("keys after rotations: %+v", keys)
	}
}

// FuzzParse: the token parser takes what anyone puts in a URL. It never
// panics, and what it accepts signs back to the same bytes.
func FuzzParse(f *testing.F) {
	k := testKey("0000aaaa", time.Now())
	for _, t := range []Token{
		{Action: ActRelease, Rcpt: "alice@example.org", Item: "Q1", Expires: time.Unix(1800000000, 0)},
		{Action: ActList, Rcpt: "b@x.y", Expires: time.Unix(0, 0)},
	} {
		s, _ := Sign(k, t)
		f.Add(s)
	}
	f.Add("")
	f.Add("AQ")
	f.Fuzz(func(t *testing.T, s string) {
		tok, body, sum, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrBadToken) {
				t.Fatalf("Parse error %v does not wrap ErrBadToken", err)
			}
			return
		}
		if len(sum) != macLen {
			t.Fatalf("MAC of %d bytes", len(sum))
		}
		again, err := tok.marshal()
		if err != nil {
			t.Fatalf("accepted %+v does not marshal: %v", tok, err)
		}
		if string(again) != string(body) {
			t.Fatalf("accepted %+v marshals as %x, parsed from %x", tok, again, body)
		}
	})
}
