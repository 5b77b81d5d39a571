package console

import "net/http"

func (c *Console) reportsRoutes() {
	c.mux.HandleFunc("GET /reports", c.authed(c.reportsPage))
}

func (c *Console) reportsPage(w http.ResponseWriter, r *http.Request, s *session) {
	c.render(w, r, s, http.StatusOK, "reports", "Reports", nil)
}
