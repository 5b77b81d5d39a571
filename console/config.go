package console

import "net/http"

func (c *Console) configRoutes() {
	c.mux.HandleFunc("GET /config", c.authed(c.configPage))
}

func (c *Console) configPage(w http.ResponseWriter, r *http.Request, s *session) {
	c.render(w, r, s, http.StatusOK, "config", "Config", nil)
}
