// Package members is the cluster's live membership: every node heartbeats
// its record (peer address, weight, health, load, applied config revision)
// into the store with a short TTL, and the master dispatches scans to the
// records that are still live.
package members

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Member is one node as it last described itself.
type Member struct {
	ID       string `json:"id"`
	PeerAddr string `json:"peer_addr"` // host:port of its peer scan API
	Weight   int    `json:"weight"`
	// Healthy: the member takes scans (not draining, and every engine
	// its policy needs answers).
	Healthy bool `json:"healthy"`
	// Down names the engines that do not answer there ("clamd
	// (timeout)") while Healthy is false because of them: such a member
	// still scans when no healthy one is left (with on_error), where a
	// draining one (Down empty) does not. Absent in older nodes' records.
	Down     []string  `json:"down,omitempty"`
	Busy     int       `json:"busy"` // scans running
	Workers  int       `json:"workers"`
	Master   bool      `json:"master"`
	Revision int64     `json:"revision"` // cluster config revision applied
	Seen     time.Time `json:"seen"`     // set by Heartbeat

	// What the console shows of every node; absent in older nodes'
	// records (and Routers on a node without VRRP).

	// Sessions is the number of SMTP connections open.
	Sessions int `json:"sessions,omitempty"`
	// Routers is the node's state in each virtual router, the first one's
	// (the node's role) first.
	Routers []Router `json:"routers,omitempty"`
	// Changes are the node's last state changes, newest first, at most
	// MaxChanges.
	Changes []Change `json:"changes,omitempty"`
}

// MaxChanges bounds Member.Changes: each heartbeat writes them again.
const MaxChanges = 5

// Router is a member's view of one virtual router.
type Router struct {
	VRID  int    `json:"vrid"`
	VIP   string `json:"vip"`   // prefix, as configured
	State string `json:"state"` // init|backup|master|fault
	// Priority is the one it advertises (lowered by failing tracked
	// checks); Configured is the node file's.
	Priority   int  `json:"priority"`
	Configured int  `json:"configured_priority"`
	Held       bool `json:"vip_held"`
}

// Change is one state change of a member's virtual router.
type Change struct {
	Time   time.Time `json:"time"`
	VRID   int       `json:"vrid"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Reason string    `json:"reason"`
}

// Role is the member's state in its first virtual router; for a record
// without routers (an older node), master or backup from Master.
func (m Member) Role() string {
	if len(m.Routers) > 0 {
		return m.Routers[0].State
	}
	if m.Master {
		return "master"
	}
	return "backup"
}

// Store is the membership as every backend implements it.
type Store interface {
	// Heartbeat stores m, with Seen set to now, live until Seen+ttl. A
	// later heartbeat of the same ID replaces it.
	Heartbeat(ctx context.Context, m Member, ttl time.Duration) error
	// Live returns the members whose heartbeat has not expired, sorted by
	// ID.
	Live(ctx context.Context) ([]Member, error)
}

// maxIDLen bounds a member id, which becomes part of a store key.
const maxIDLen = 64

func check(m Member, ttl time.Duration) error {
	switch {
	case m.ID == "":
		return errors.New("empty member id")
	case len(m.ID) > maxIDLen:
		return fmt.Errorf("member id longer than %d bytes", maxIDLen)
	case strings.ContainsAny(m.ID, " \t\r\n"):
		return errors.New("member id contains white space")
	case ttl <= 0:
		return fmt.Errorf("ttl must be positive, got %s", ttl)
	}
	return nil
}

func sortByID(ms []Member) {
	slices.SortFunc(ms, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
}
