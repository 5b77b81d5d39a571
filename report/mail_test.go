package report

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"

	"github.com/mxgate/mxgate/deliver"
	"github.com/mxgate/mxgate/msglog"
	"github.com/mxgate/mxgate/testenv"
)

// mailTest is a scheduler over a real embedded store and message log,
// mailing to a real smtp-sink; settings can change between runs.
type mailTest struct {
	store Store
	sc    *scheduler
	clock *clock
	mu    sync.Mutex
	set   MailSettings
}

func newMailTest(t *testing.T, to []string, down string) *mailTest {
	t.Helper()
	s, err := NewBolt(openDB(t))
	if err != nil {
		t.Fatal(err)
	}
	recs := append(dayRecords(), msglog.Record{
		ID: "xss", Time: day.Add(12 * time.Hour), Node: "n1", Action: "quarantine", Verdict: "spam",
		Sender: "<script>@x", Recipients: []string{"a@corp.test"},
	})
	m := &mailTest{store: s, clock: &clock{t: day.AddDate(0, 0, 1).Add(time.Hour)}}
	m.setMail(to, down)
	m.sc = newScheduler(s, newLog(t, recs...), "n1", func() bool { return true }, m.settings, m.clock.now, nil)
	return m
}

func (m *mailTest) setMail(to []string, down string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.set = MailSettings{To: to, From: "postmaster@mx.test", Name: "mx.test/n1",
		Downstream: deliver.Options{Addr: down, Helo: "mx.test", Timeout: 5 * time.Second}}
}

func (m *mailTest) settings() MailSettings {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.set
}

// parts reads a message as smtp-sink dumped it: its header and the
// decoded body of each part by content type.
func parts(t *testing.T, raw string) (*mail.Header, map[string]string) {
	t.Helper()
	r, err := mail.CreateReader(strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for {
		p, err := r.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		h, ok := p.Header.(*mail.InlineHeader)
		if !ok {
			t.Fatalf("part with header %T, want inline", p.Header)
		}
		ct, _, _ := h.ContentType()
		b, _ := io.ReadAll(p.Body)
		out[ct] = strings.ReplaceAll(string(b), "\r\n", "\n")
	}
	return &r.Header, out
}

func TestMailReport(t *testing.T) {
	sink := testenv.StartSink(t)
	m := newMailTest(t, []string{"admin@corp.test", "boss@corp.test"}, sink.Addr)
	m.sc.run(t.Context())
	msgs := sink.Messages(t)
	if len(msgs) != 1 {
		t.Fatalf("%d messages downstream, want 1", len(msgs))
	}
	stored, err := m.store.Get(t.Context(), "2026-03-14")
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := WriteText(&want, stored, true); err != nil {
		t.Fatal(err)
	}
	h, ps := parts(t, msgs[0])
	if ct, _, _ := h.ContentType(); ct != "multipart/alternative" {
		t.Errorf("Content-Type %q, want multipart/alternative", ct)
	}
	if len(ps) != 2 {
		t.Errorf("parts %v, want text/plain and text/html", len(ps))
	}
	if ps["text/plain"] != want.String() {
		t.Errorf("text part:\n%s\nwant (mxgate report):\n%s", ps["text/plain"], want.String())
	}
	if !strings.Contains(want.String(), "Messages: 25\n") || !strings.Contains(want.String(), "  1  <script>@x\n") {
		t.Errorf("mxgate report text lacks the day's figures:\n%s", want.String())
	}
	html := ps["text/html"]
	if strings.Contains(html, "<script>") || !strings.Contains(html, "<td>&lt;script&gt;@x</td>") {
		t.Errorf("HTML part does not escape the sender <script>@x:\n%s", html)
	}
	if !strings.Contains(html, `<td align="right">25</td>`) && !strings.Contains(html, "<b>25</b>") {
		t.Errorf("HTML part lacks the total:\n%s", html)
	}
	subj, _ := h.Subject()
	id, _ := h.MessageID()
	date, _ := h.Date()
	to, _ := h.AddressList("To")
	if subj != "mxgate daily report 2026-03-14 (mx.test/n1)" || id == "" || date.IsZero() ||
		h.Get("Auto-Submitted") != "auto-generated" || len(to) != 2 {
		t.Errorf("Subject %q, Message-ID %q, Date %v, Auto-Submitted %q, To %v", subj, id, date, h.Get("Auto-Submitted"), to)
	}
	if !strings.Contains(msgs[0], "X-Rcpt-Args: <admin@corp.test>") || !strings.Contains(msgs[0], "X-Rcpt-Args: <boss@corp.test>") {
		t.Errorf("envelope recipients missing:\n%s", msgs[0][:min(len(msgs[0]), 400)])
	}

	// Later runs of the day, on this node or another (a new mailer: a new
	// master after a failover), send nothing more.
	m.clock.set(m.clock.now().Add(2 * time.Hour))
	m.sc.run(t.Context())
	other := newScheduler(m.store, newLog(t), "n2", func() bool { return true }, m.settings, m.clock.now, nil)
	other.run(t.Context())
	if n := len(sink.Messages(t)); n != 1 {
		t.Errorf("%d messages after more runs, want still 1", n)
	}
	cur, claimed, err := m.store.ClaimMail(t.Context(), "2026-03-14", Mailing{Token: "x"})
	if err != nil || claimed || cur.Node != "n1" || cur.Sent.IsZero() {
		t.Errorf("recorded mailing %+v, claimed %v, %v; want sent by n1", cur, claimed, err)
	}
}

func TestMailReportOff(t *testing.T) {
	sink := testenv.StartSink(t)
	m := newMailTest(t, nil, sink.Addr)
	m.sc.run(t.Context())
	if _, err := m.store.Get(t.Context(), "2026-03-14"); err != nil {
		t.Fatalf("report not written: %v", err)
	}
	if n := len(sink.Messages(t)); n != 0 {
		t.Errorf("%d messages with mail_to empty, want 0", n)
	}
	if _, claimed, err := m.store.ClaimMail(t.Context(), "2026-03-14", Mailing{Token: "x"}); err != nil || !claimed {
		t.Errorf("mail of the day recorded with mail_to empty (claimed %v, %v)", claimed, err)
	}
}

func TestMailReportRetry(t *testing.T) {
	refusing := testenv.StartSink(t, "-f", "RCPT")
	good := testenv.StartSink(t)
	m := newMailTest(t, []string{"admin@corp.test"}, refusing.Addr)
	m.sc.run(t.Context())
	if n := len(refusing.Messages(t)) + len(good.Messages(t)); n != 0 {
		t.Fatalf("%d messages through a refusing downstream", n)
	}
	// The refusal left the day unclaimed; the downstream is fixed.
	m.setMail([]string{"admin@corp.test"}, good.Addr)
	m.clock.set(m.clock.now().Add(firstRetry / 2))
	m.sc.run(t.Context())
	if n := len(good.Messages(t)); n != 0 {
		t.Fatalf("retried before the retry was due: %d messages", n)
	}
	m.clock.set(m.clock.now().Add(firstRetry))
	m.sc.run(t.Context())
	if n := len(good.Messages(t)); n != 1 {
		t.Fatalf("%d messages at the retry, want 1", n)
	}
	m.clock.set(m.clock.now().Add(time.Hour))
	m.sc.run(t.Context())
	if n := len(good.Messages(t)); n != 1 {
		t.Errorf("%d messages after the retry, want still 1", n)
	}
}

// A claim left by a node that stopped while sending is not sent again.
func TestMailReportStaleClaim(t *testing.T) {
	sink := testenv.StartSink(t)
	m := newMailTest(t, []string{"admin@corp.test"}, sink.Addr)
	claim := Mailing{Token: "old", Node: "n9", Claimed: m.clock.now().Add(-claimTimeout - time.Minute), To: []string{"admin@corp.test"}}
	if _, claimed, err := m.store.ClaimMail(t.Context(), "2026-03-14", claim); err != nil || !claimed {
		t.Fatal(claimed, err)
	}
	m.sc.run(t.Context())
	m.clock.set(m.clock.now().Add(2 * time.Hour))
	m.sc.run(t.Context())
	if n := len(sink.Messages(t)); n != 0 {
		t.Errorf("%d messages after a claim of unknown outcome, want 0", n)
	}
}
