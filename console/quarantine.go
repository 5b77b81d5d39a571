package console

import "net/http"

func (c *Console) quarantineRoutes() {
	c.mux.HandleFunc("GET /quarantine", c.authed(c.quarantinePage))
}

func (c *Console) quarantinePage(w http.ResponseWriter, r *http.Request, s *session) {
	c.render(w, r, s, http.StatusOK, "quarantine", "Quarantine", nil)
}
