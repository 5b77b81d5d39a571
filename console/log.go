package console

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/msglog"
)

func (c *Console) logRoutes() {
	c.mux.HandleFunc("GET /log", c.authed(c.logPage))
	c.mux.HandleFunc("GET /log/{id}", c.authed(c.logMessage))
}

// logPageSize is how many records a search shows unless it asks for more.
const logPageSize = 100

// logActions are the actions a search can pick, as the log writes them.
var logActions = []string{"deliver", "quarantine", "reject", "tempfail", "refused", msglog.ActionRelease, msglog.ActionDelete}

// logData is the search page: the query as typed, and what it found.
type logData struct {
	Q       admin.LogQuery
	Actions []string
	Records []msglog.Record
	Failed  string // the API's refusal of the query, in its words
	Older   string // the same search before the oldest shown, when there may be more
}

func (c *Console) logPage(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	if id := strings.TrimSpace(q.Get("id")); id != "" {
		c.followMessage(w, r, s, id)
		return
	}
	d := logData{Actions: logActions, Q: admin.LogQuery{
		Sender: strings.TrimSpace(q.Get("sender")), Rcpt: strings.TrimSpace(q.Get("rcpt")), Action: q.Get("action"),
		Since: strings.TrimSpace(q.Get("since")), Until: strings.TrimSpace(q.Get("until")), Day: strings.TrimSpace(q.Get("day")),
		Limit: logPageSize,
	}}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > msglog.MaxLimit {
			d.Failed = fmt.Sprintf("limit: want a whole number from 1 to %d, got %q", msglog.MaxLimit, v)
			c.render(w, r, s, http.StatusBadRequest, "log", "Message log", d)
			return
		}
		d.Q.Limit = n
	}
	recs, err := c.client(r, s).Log(r.Context(), d.Q)
	if err != nil {
		d.Failed = apiMessage(err)
		c.render(w, r, s, http.StatusBadRequest, "log", "Message log", d)
		return
	}
	d.Records = recs
	if len(recs) == d.Q.Limit && d.Q.Day == "" {
		older := url.Values{}
		for k, v := range map[string]string{"sender": d.Q.Sender, "rcpt": d.Q.Rcpt, "action": d.Q.Action, "since": d.Q.Since} {
			if v != "" {
				older.Set(k, v)
			}
		}
		older.Set("until", recs[len(recs)-1].Time.UTC().Format(time.RFC3339Nano))
		older.Set("limit", strconv.Itoa(d.Q.Limit))
		d.Older = "/log?" + older.Encode()
	}
	c.render(w, r, s, http.StatusOK, "log", "Message log", d)
}

func (c *Console) logMessage(w http.ResponseWriter, r *http.Request, s *session) {
	c.followMessage(w, r, s, r.PathValue("id"))
}

// followData is one message's way through the gateway.
type followData struct {
	ID     string
	Steps  []step
	Failed string
}

// step is one event of a message's timeline; Fields are label and value
// pairs (values from mail are shown escaped like any other).
type step struct {
	Time       time.Time
	Class      string // ok, bad, warn or "" for the timeline's marker
	Title      string
	Fields     [][2]string
	Quarantine string // the quarantined message's id, linked
}

func (c *Console) followMessage(w http.ResponseWriter, r *http.Request, s *session, id string) {
	d := followData{ID: id}
	recs, err := c.client(r, s).Log(r.Context(), admin.LogQuery{ID: id, Limit: msglog.MaxLimit})
	if err != nil {
		d.Failed = apiMessage(err)
		c.render(w, r, s, http.StatusBadRequest, "logmessage", "Message "+id, d)
		return
	}
	if len(recs) > 0 {
		d.ID = recs[0].ID // as the log has it, whatever case was typed
	}
	// The log answers newest first; a story reads oldest first.
	slices.SortStableFunc(recs, func(a, b msglog.Record) int { return a.Time.Compare(b.Time) })
	for _, rec := range recs {
		d.Steps = append(d.Steps, timeline(rec)...)
	}
	status := http.StatusOK
	if len(recs) == 0 {
		status = http.StatusNotFound
	}
	c.render(w, r, s, status, "logmessage", "Message "+d.ID, d)
}

// timeline tells one record as the steps it stands for: an SMTP
// transaction is received, scanned and its outcome; an operator's action
// is one step naming who did it.
func timeline(rec msglog.Record) []step {
	switch rec.Action {
	case msglog.ActionRelease:
		return []step{{Time: rec.Time, Class: "ok", Title: "Released by " + orDash(rec.By), Fields: fields(
			"to", strings.Join(rec.Recipients, ", "), "downstream replied", rec.Downstream, "on node", rec.Node)}}
	case msglog.ActionDelete:
		return []step{{Time: rec.Time, Class: "bad", Title: "Deleted by " + orDash(rec.By), Fields: fields("on node", rec.Node)}}
	}
	received := rec.Time.Add(-rec.Duration)
	var refused []string
	for _, f := range rec.Refused {
		refused = append(refused, f.Rcpt+": "+f.Reply)
	}
	steps := []step{{Time: received, Title: "Received from " + orDash(rec.ClientIP), Fields: fields(
		"HELO", rec.Helo, "sender", orNull(rec.Sender), "recipients", strings.Join(rec.Recipients, ", "),
		"refused recipients", strings.Join(refused, "; "), "size", sizeText(rec.Size))}}
	if rec.Verdict != "" || rec.Score != 0 || len(rec.Symbols) > 0 || rec.List != nil {
		var list string
		if rec.List != nil {
			list = rec.List.Kind + " " + rec.List.Value
			if rec.List.Rcpt != "" {
				list += " for " + rec.List.Rcpt
			}
		}
		steps = append(steps, step{Time: rec.Time, Title: "Scanned on " + orDash(rec.Node), Fields: fields(
			"verdict", rec.Verdict, "score", strconv.FormatFloat(rec.Score, 'f', -1, 64),
			"symbols", strings.Join(rec.Symbols, ", "), "viruses", strings.Join(rec.Viruses, ", "),
			"list entry", list, "took", rec.Duration.Round(time.Millisecond).String())})
	}
	out := step{Time: rec.Time, Fields: fields("reply to the client", rec.Reply, "on node", rec.Node)}
	switch rec.Action {
	case "deliver":
		out.Class, out.Title = "ok", "Delivered"
		out.Fields = append(fields("downstream replied", rec.Downstream), out.Fields...)
	case "quarantine":
		out.Class, out.Title, out.Quarantine = "warn", "Quarantined", rec.QuarantineID
	case "tempfail":
		out.Class, out.Title = "warn", "Temporarily refused (the client retries)"
		out.Fields = append(fields("downstream replied", rec.Downstream), out.Fields...)
	case "reject":
		out.Class, out.Title = "bad", "Rejected"
	case "refused":
		out.Class, out.Title = "bad", "Refused"
	default: // whatever a newer node writes
		out.Class, out.Title = "bad", "Action "+rec.Action
	}
	return append(steps, out)
}

// fields pairs labels with values, leaving out the empty ones.
func fields(kv ...string) [][2]string {
	var out [][2]string
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			out = append(out, [2]string{kv[i], kv[i+1]})
		}
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// orNull shows the null sender as SMTP writes it.
func orNull(s string) string {
	if s == "" {
		return "<>"
	}
	return s
}

func sizeText(n int64) string {
	switch {
	case n <= 0:
		return ""
	case n < 1024:
		return fmt.Sprintf("%d bytes", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/1024)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// actionClass is the colour class of a message-log action.
func actionClass(action string) string {
	switch action {
	case "deliver", msglog.ActionRelease:
		return "ok"
	case "quarantine", "tempfail":
		return "warn"
	}
	return "bad"
}
