package console

import "net/http"

func (c *Console) logRoutes() {
	c.mux.HandleFunc("GET /log", c.authed(c.logPage))
}

func (c *Console) logPage(w http.ResponseWriter, r *http.Request, s *session) {
	c.render(w, r, s, http.StatusOK, "log", "Log", nil)
}
