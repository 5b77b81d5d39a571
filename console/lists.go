package console

import "net/http"

func (c *Console) listsRoutes() {
	c.mux.HandleFunc("GET /lists", c.authed(c.listsPage))
}

func (c *Console) listsPage(w http.ResponseWriter, r *http.Request, s *session) {
	c.render(w, r, s, http.StatusOK, "lists", "Lists", nil)
}
