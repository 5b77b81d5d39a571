package admin

import (
	"bytes"
	"encoding/json"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mxgate/mxgate/msglog"
	"github.com/mxgate/mxgate/quarantine"
)

// recentLines is how many message log records the status page shows.
const recentLines = 20

// statusTmpl is plain HTML: html/template escapes every value, and there is
// no script at all, so nothing a sender puts in an address can run here.
var statusTmpl = template.Must(template.New("status").Funcs(template.FuncMap{
	"ts":   func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
	"join": func(s []string) string { return strings.Join(s, ", ") },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="30">
<title>mxgate {{.Node}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;font-size:90%}
td,th{border-bottom:1px solid #ddd;padding:.2em .6em;text-align:left;vertical-align:top}
.ok{color:#070}.bad{color:#b00}pre{background:#f6f6f6;padding:.6em}
</style></head><body>
<h1>mxgate node {{.Node}}</h1>
<p>Health: {{if .Healthy}}<span class="ok">ok</span>{{else}}<span class="bad">{{.Health}}</span>{{end}}
&middot; {{ts .Now}}</p>
<p>Quarantined in the last 24 hours: <b>{{.Quarantined}}</b></p>
{{with .Status}}<h2>Status</h2><pre>{{.}}</pre>{{end}}
<h2>Recent messages</h2>
{{if .LogError}}<p class="bad">{{.LogError}}</p>{{else}}
<table><tr><th>Time</th><th>ID</th><th>From</th><th>To</th><th>Action</th><th>Verdict</th><th>Score</th><th>Node</th></tr>
{{range .Recent}}<tr><td>{{ts .Time}}</td><td>{{.ID}}</td><td>{{.Sender}}</td><td>{{join .Recipients}}</td><td>{{.Action}}</td><td>{{.Verdict}}</td><td>{{printf "%.2f" .Score}}</td><td>{{.Node}}</td></tr>
{{else}}<tr><td colspan="8">none</td></tr>
{{end}}</table>{{end}}
</body></html>
`))

type statusData struct {
	Node        string
	Now         time.Time
	Healthy     bool
	Health      string
	Quarantined string
	Status      string
	Recent      []msglog.Record
	LogError    string
}

// statusPage renders what it can: a store that is down makes a line of the
// page say so rather than failing the page, which is when it is needed most.
func (s *Server) statusPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := s.now()
	d := statusData{Node: s.o.NodeID, Now: now, Healthy: true}
	if err := s.health(); err != nil {
		d.Healthy, d.Health = false, err.Error()
	}
	items, err := s.o.Quarantine.List(ctx, quarantine.Filter{Since: now.Add(-24 * time.Hour), Limit: quarantine.MaxLimit})
	switch {
	case err != nil:
		s.log.Warn("status page: list quarantine", "err", err)
		d.Quarantined = "unavailable"
	case len(items) >= quarantine.MaxLimit:
		d.Quarantined = strconv.Itoa(quarantine.MaxLimit) + " or more"
	default:
		d.Quarantined = strconv.Itoa(len(items))
	}
	d.Recent, err = s.o.Log.Search(ctx, msglog.Query{Limit: recentLines})
	if err != nil {
		s.log.Warn("status page: search log", "err", err)
		d.LogError = "message log unavailable"
	}
	if s.o.Status != nil {
		b, err := json.MarshalIndent(s.o.Status(ctx), "", "  ")
		if err != nil {
			b = []byte("status unavailable")
		}
		d.Status = string(b)
	}
	var buf bytes.Buffer
	if err := statusTmpl.Execute(&buf, d); err != nil {
		s.internal(w, r, "render status page", err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	_, _ = buf.WriteTo(w)
}

// nodeStatus answers the node's status as JSON.
func (s *Server) nodeStatus(w http.ResponseWriter, r *http.Request) {
	if s.o.Status == nil {
		writeError(w, http.StatusNotFound, "no status on this node")
		return
	}
	writeJSON(w, http.StatusOK, s.o.Status(r.Context()))
}
