package console

import "net/http"

func (c *Console) clusterRoutes() {
	c.mux.HandleFunc("GET /cluster", c.authed(c.clusterPage))
}

func (c *Console) clusterPage(w http.ResponseWriter, r *http.Request, s *session) {
	c.render(w, r, s, http.StatusOK, "cluster", "Cluster", nil)
}
