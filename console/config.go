package console

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/clusterconf"
)

func (c *Console) configRoutes() {
	c.mux.HandleFunc("GET /config", c.authed(c.configPage))
	c.mux.HandleFunc("POST /config/set", c.authed(c.configSet))
}

// configHistory is how many revisions the page lists.
const configHistory = 20

// configData is the current revision and the history of changes.
type configData struct {
	Current  clusterconf.Revision
	None     bool   // no revision stored yet
	YAML     string // the current settings as mxgate config show prints them
	History  []revisionStep
	Failed   string
	Set, Why string // the set form as it was refused, typed again
}

// revisionStep is one revision of the history with what it changed.
type revisionStep struct {
	clusterconf.Revision
	Changes []clusterconf.Change
	First   bool // the first revision: nothing before it
	Unknown bool // the revision before it is not in the list
}

func (c *Console) configPage(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	d := configData{Set: q.Get("set"), Why: q.Get("comment")}
	api := c.client(r, s)
	cur, err := api.Config(r.Context())
	if noConfigYet(err) {
		d.None = true
		c.render(w, r, s, http.StatusOK, "config", "Configuration", d)
		return
	}
	if err != nil {
		d.Failed = apiMessage(err)
		c.render(w, r, s, http.StatusBadGateway, "config", "Configuration", d)
		return
	}
	d.Current = cur
	b, err := yaml.Marshal(cur.Settings)
	if err != nil {
		c.log.Error("console: encode settings", "err", err)
	}
	d.YAML = string(b)
	// One more than shown, to tell what the oldest shown one changed.
	revs, err := api.ConfigHistory(r.Context(), configHistory+1)
	if err == nil {
		var changes [][]clusterconf.Change
		if changes, err = clusterconf.HistoryChanges(revs); err == nil {
			for i, rev := range revs[:min(configHistory, len(revs))] {
				d.History = append(d.History, revisionStep{Revision: rev, Changes: changes[i],
					First: i+1 == len(revs) && rev.Number <= 1, Unknown: i+1 == len(revs) && rev.Number > 1})
			}
		}
	}
	if err != nil {
		d.Failed = "the history could not be read: " + apiMessage(err)
	}
	c.render(w, r, s, http.StatusOK, "config", "Configuration", d)
}

// noConfigYet tells the API's answer for a cluster without a revision.
func noConfigYet(err error) bool {
	var ae *admin.Error
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound && strings.Contains(ae.Message, "stored yet")
}

// configSet is mxgate config set KEY=VALUE... --comment: the patches
// over the revision the page showed (expect), so that a change made
// meanwhile by someone else is refused, not overwritten.
func (c *Console) configSet(w http.ResponseWriter, r *http.Request, s *session) {
	lines, comment := r.PostFormValue("set"), r.PostFormValue("comment")
	back := "/config?" + url.Values{"set": {lines}, "comment": {comment}}.Encode() + "#set"
	target := strings.Join(strings.Fields(lines), " ")
	next, changes, rev, err := c.applyPatches(r, s, lines, comment, r.PostFormValue("expect"))
	switch {
	case err != nil:
		c.done(w, r, s, "config set", target, err, "", back)
	case len(changes) == 0:
		c.done(w, r, s, "config set", target, nil, fmt.Sprintf("no change; revision %d stays", next), "/config")
	default:
		var b strings.Builder
		for _, ch := range changes {
			b.WriteString("; " + ch.String())
		}
		c.done(w, r, s, "config set", target, nil, fmt.Sprintf("stored revision %d%s", rev, b.String()), "/config")
	}
}

// applyPatches parses KEY=VALUE lines, applies them to the current
// settings and stores the result. It returns the current revision, the
// changes and the stored revision (0 when nothing changed).
func (c *Console) applyPatches(r *http.Request, s *session, lines, comment, expect string) (cur int64, changes []clusterconf.Change, stored int64, err error) {
	var patches []clusterconf.Patch
	for l := range strings.Lines(lines) {
		if l = strings.TrimSpace(l); l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		p, err := clusterconf.ParsePatch(l)
		if err != nil {
			return 0, nil, 0, err
		}
		patches = append(patches, p)
	}
	if len(patches) == 0 {
		return 0, nil, 0, errors.New("no KEY=VALUE given, e.g. scanner.thresholds.quarantine=7")
	}
	want, err := strconv.ParseInt(cmp.Or(expect, "0"), 10, 64)
	if err != nil {
		return 0, nil, 0, fmt.Errorf("expect: %q is not a revision number", expect)
	}
	api := c.client(r, s)
	rev, err := api.Config(r.Context())
	if noConfigYet(err) {
		rev, err = clusterconf.Revision{Settings: clusterconf.Defaults()}, nil
	}
	if err != nil {
		return 0, nil, 0, err
	}
	next, err := rev.Settings.With(patches...)
	if err != nil {
		return 0, nil, 0, err
	}
	if changes, err = clusterconf.Diff(rev.Settings, next); err != nil || len(changes) == 0 {
		return rev.Number, nil, 0, err
	}
	// The revision the page showed; the API refuses (409) when another
	// was stored since.
	res, err := api.SetConfig(r.Context(), admin.ConfigRequest{Settings: next, Comment: comment, Expect: cmp.Or(want, rev.Number)})
	if err != nil {
		return rev.Number, nil, 0, err
	}
	return rev.Number, changes, res.Number, nil
}
