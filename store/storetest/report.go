package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/mxgate/mxgate/report"
)

func runReports(t *testing.T, open func(t *testing.T) Env) {
	day := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	t.Run("CreateGetDays", func(t *testing.T) {
		ctx := t.Context()
		env := open(t)
		s := env.Reports
		if _, err := s.Get(ctx, "2026-03-14"); !errors.Is(err, report.ErrNotFound) {
			t.Fatalf("Get on empty store: %v, want ErrNotFound", err)
		}
		if days, err := s.Days(ctx, 0); err != nil || len(days) != 0 {
			t.Fatalf("Days on empty store = %v, %v", days, err)
		}
		// A day of the backend's own message log, so that every field of
		// the report is filled.
		for i, r := range []struct{ action, verdict, sender string }{
			{"deliver", "clean", "alice@a.example"}, {"quarantine", "spam", "Spammer@Bad.example"},
			{"reject", "virus", "worm@bad.example"}, {"reject", "spam", "spammer@bad.example"},
		} {
			rc := rec(fmt.Sprintf("r%d", i), i, r.sender, []string{"bob@example.org"}, r.action)
			rc.Time, rc.Verdict = day.Add(time.Duration(i)*time.Hour), r.verdict
			if r.verdict == "virus" {
				rc.Viruses = []string{"Eicar-Test-Signature"}
			}
			if err := env.Log.Append(ctx, rc); err != nil {
				t.Fatal(err)
			}
		}
		// An operator's release of that day is no message: not counted.
		op := released("r1", 0, "Spammer@Bad.example", []string{"bob@example.org"})
		op.Time = day.Add(5 * time.Hour)
		if err := env.Log.Append(ctx, op); err != nil {
			t.Fatal(err)
		}
		first, err := report.Build(ctx, env.Log, day, "n1")
		if err != nil {
			t.Fatal(err)
		}
		if first.Day != "2026-03-14" || first.Total != 4 || len(first.TopSenders) == 0 || len(first.Viruses) != 1 {
			t.Fatalf("report to store = %+v, want a full one of 2026-03-14", first)
		}
		created, err := s.Create(ctx, first)
		if err != nil || !created {
			t.Fatalf("first Create = %v, %v; want created", created, err)
		}
		// A second master (after a failover) builds the day again: the
		// stored report stays the first one.
		second := first
		second.Node, second.Total = "n2", 1
		created, err = s.Create(ctx, second)
		if err != nil || created {
			t.Fatalf("second Create = %v, %v; want not created", created, err)
		}
		got, err := s.Get(ctx, first.Day)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, first) {
			t.Errorf("Get = %+v\nwant %+v", got, first)
		}

		for _, d := range []string{"2026-03-12", "2025-12-31", "2026-03-13"} {
			if created, err := s.Create(ctx, report.Report{Day: d, Node: "n1"}); err != nil || !created {
				t.Fatalf("Create(%s) = %v, %v", d, created, err)
			}
		}
		days, err := s.Days(ctx, 0)
		if want := []string{"2026-03-14", "2026-03-13", "2026-03-12", "2025-12-31"}; err != nil || !reflect.DeepEqual(days, want) {
			t.Errorf("Days = %v, %v; want %v", days, err, want)
		}
		days, err = s.Days(ctx, 2)
		if want := []string{"2026-03-14", "2026-03-13"}; err != nil || !reflect.DeepEqual(days, want) {
			t.Errorf("Days(2) = %v, %v; want %v", days, err, want)
		}

		for _, bad := range []string{"", "2026-3-14", "14.03.2026", "2026-03-14x"} {
			if _, err := s.Create(ctx, report.Report{Day: bad}); err == nil {
				t.Errorf("Create with day %q succeeded", bad)
			}
			if _, err := s.Get(ctx, bad); err == nil || errors.Is(err, report.ErrNotFound) {
				t.Errorf("Get(%q) = %v, want a bad-day error", bad, err)
			}
		}
	})

	// The day's report mail: claimed once; a claim given back can be
	// claimed again; a sent one stays; another's claim is left alone.
	t.Run("Mail", func(t *testing.T) {
		ctx := t.Context()
		s := open(t).Reports
		at := day.Add(25 * time.Hour)
		a := report.Mailing{Token: "a", Node: "n1", Claimed: at, To: []string{"admin@corp.example"}}
		b := report.Mailing{Token: "b", Node: "n2", Claimed: at.Add(time.Minute), To: a.To}
		if cur, ok, err := s.ClaimMail(ctx, "2026-03-14", a); err != nil || !ok || cur.Token != "a" {
			t.Fatalf("first claim = %+v, %v, %v", cur, ok, err)
		}
		if cur, ok, err := s.ClaimMail(ctx, "2026-03-14", b); err != nil || ok || !reflect.DeepEqual(cur, a) {
			t.Fatalf("second claim = %+v, %v, %v; want lost to %+v", cur, ok, err, a)
		}
		if err := s.FinishMail(ctx, "2026-03-14", b, false); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := s.ClaimMail(ctx, "2026-03-14", b); ok {
			t.Fatal("another's claim removed a's")
		}
		if err := s.FinishMail(ctx, "2026-03-14", a, false); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := s.ClaimMail(ctx, "2026-03-14", b); err != nil || !ok {
			t.Fatalf("claim after a gave back = %v, %v", ok, err)
		}
		sent := b
		sent.Sent = at.Add(2 * time.Minute)
		if err := s.FinishMail(ctx, "2026-03-14", sent, true); err != nil {
			t.Fatal(err)
		}
		if cur, ok, err := s.ClaimMail(ctx, "2026-03-14", a); err != nil || ok || !cur.Sent.Equal(sent.Sent) || cur.Node != "n2" {
			t.Fatalf("claim after sent = %+v, %v, %v", cur, ok, err)
		}
		if _, ok, err := s.ClaimMail(ctx, "2026-03-15", a); err != nil || !ok {
			t.Errorf("another day's claim = %v, %v", ok, err)
		}
		if _, _, err := s.ClaimMail(ctx, "15.03.2026", a); err == nil {
			t.Error("claim with a bad day succeeded")
		}
	})

	// Masters racing for one day: exactly one writes.
	t.Run("CreateConcurrent", func(t *testing.T) {
		const writers = 16
		s := open(t).Reports
		var wg sync.WaitGroup
		var mu sync.Mutex
		var winners []string
		start := make(chan struct{})
		for i := range writers {
			wg.Go(func() {
				<-start
				node := fmt.Sprintf("n%d", i)
				created, err := s.Create(t.Context(), report.Report{Day: "2026-03-14", Node: node})
				if err != nil {
					t.Error(err)
					return
				}
				if created {
					mu.Lock()
					winners = append(winners, node)
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()
		if len(winners) != 1 {
			t.Fatalf("winners = %v, want exactly one", winners)
		}
		got, err := s.Get(t.Context(), "2026-03-14")
		if err != nil || got.Node != winners[0] {
			t.Errorf("stored report by %q, %v; want the winner %s", got.Node, err, winners[0])
		}
	})
}
