package console

import (
	"html/template"
	"strings"
	"time"
)

// routes registers the pages; each page's file has its handlers.
func (c *Console) routes() {
	c.clusterRoutes()
	c.quarantineRoutes()
	c.listsRoutes()
	c.logRoutes()
	c.reportsRoutes()
	c.configRoutes()
	c.digestRoutes()
}

// funcs are the helpers every template may use.
func (c *Console) funcs() template.FuncMap {
	return template.FuncMap{
		"ts":   func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
		"join": func(s []string) string { return strings.Join(s, ", ") },
		"nav":  func() []navEntry { return menu },
		// actionClass colours a message-log action.
		"actionClass": actionClass,
		// quarantine
		"released": released,
		"size":     size,
	}
}

type navEntry struct{ Path, Label string }

// menu is the console's pages in the order of the menu.
var menu = []navEntry{
	{"cluster", "Cluster"}, {"quarantine", "Quarantine"}, {"lists", "Lists"},
	{"log", "Message log"}, {"reports", "Reports"}, {"digest", "Digests"}, {"config", "Configuration"},
}
