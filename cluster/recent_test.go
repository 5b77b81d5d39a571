package cluster

import (
	"slices"
	"testing"
	"time"
)

// The ring keeps the last RecentTransitions, newest first, whatever the
// number added.
func TestTransitionRing(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		added int
		want  []int // seconds after t0 of the kept ones, newest first
	}{
		{"empty", 0, nil},
		{"one", 1, []int{0}},
		{"full", RecentTransitions, []int{7, 6, 5, 4, 3, 2, 1, 0}},
		{"wrapped", RecentTransitions + 3, []int{10, 9, 8, 7, 6, 5, 4, 3}},
		{"wrapped twice", 3*RecentTransitions + 1, []int{24, 23, 22, 21, 20, 19, 18, 17}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r transitionRing
			for i := range tc.added {
				r.add(Transition{Time: t0.Add(time.Duration(i) * time.Second), From: "backup", To: "master", Reason: "preempt"})
			}
			var got []int
			for _, tr := range r.newestFirst() {
				got = append(got, int(tr.Time.Sub(t0)/time.Second))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("kept %v, want %v", got, tc.want)
			}
		})
	}
}
