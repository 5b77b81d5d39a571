package admin

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/mxgate/mxgate/clusterconf"
	"github.com/mxgate/mxgate/report"
)

// ConfigRequest is the body of PUT /api/v1/config.
type ConfigRequest struct {
	Settings clusterconf.Settings `json:"settings"`
	Comment  string               `json:"comment,omitempty"`
	// Expect is the revision the change was made against; 0 = whatever is
	// current. A different current revision is a conflict (409), so two
	// administrators editing at once do not overwrite each other unseen.
	Expect int64 `json:"expect,omitempty"`
}

// PushResult answers POST /api/v1/config/push.
type PushResult struct {
	Revision int64 `json:"revision"`
}

// ReportResult answers GET /api/v1/report: the stored report of a past day,
// or one built now from the message log (Stored false), e.g. for today.
type ReportResult struct {
	report.Report
	Stored bool `json:"stored"`
}

func (s *Server) configStore(w http.ResponseWriter) bool {
	if s.o.Config == nil {
		writeError(w, http.StatusNotFound, "no cluster configuration on this node")
		return false
	}
	return true
}

func (s *Server) configGet(w http.ResponseWriter, r *http.Request) {
	if !s.configStore(w) {
		return
	}
	rev, err := s.o.Config.Current(r.Context())
	if errors.Is(err, clusterconf.ErrNone) {
		writeError(w, http.StatusNotFound, "no cluster configuration stored yet")
		return
	}
	if err != nil {
		s.internal(w, r, "read cluster configuration", err)
		return
	}
	writeJSON(w, http.StatusOK, rev)
}

func (s *Server) configPut(w http.ResponseWriter, r *http.Request) {
	if !s.configStore(w) {
		return
	}
	// Over the defaults: a client older than a setting leaves it out, and
	// it must read as its default, not as a zero the scanner refuses.
	req := ConfigRequest{Settings: clusterconf.Defaults()}
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := checkComment(req.Comment); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := req.Settings.Validate(); err != nil {
		writeError(w, http.StatusBadRequest, "settings: "+oneLine(err))
		return
	}
	expect := req.Expect
	if expect == 0 {
		cur, err := s.o.Config.Current(r.Context())
		switch {
		case errors.Is(err, clusterconf.ErrNone):
		case err != nil:
			s.internal(w, r, "read cluster configuration", err)
			return
		default:
			expect = cur.Number
		}
	}
	rev, err := s.o.Config.Put(r.Context(), req.Settings, s.who(r), req.Comment, expect)
	if errors.Is(err, clusterconf.ErrConflict) {
		writeError(w, http.StatusConflict, "the configuration changed meanwhile (revision "+strconv.FormatInt(expect, 10)+" is no longer current); show it and try again")
		return
	}
	if err != nil {
		s.internal(w, r, "store cluster configuration", err)
		return
	}
	s.log.Info("cluster configuration changed", "revision", rev.Number, "by", rev.By, "comment", rev.Comment)
	writeJSON(w, http.StatusOK, rev)
}

func (s *Server) configPush(w http.ResponseWriter, r *http.Request) {
	if !s.configStore(w) {
		return
	}
	rev, err := s.o.Config.Current(r.Context())
	if errors.Is(err, clusterconf.ErrNone) {
		writeError(w, http.StatusNotFound, "no cluster configuration stored yet")
		return
	}
	if err == nil {
		err = s.o.Config.Announce(r.Context(), rev.Number)
	}
	if err != nil {
		s.internal(w, r, "announce cluster configuration", err)
		return
	}
	writeJSON(w, http.StatusOK, PushResult{Revision: rev.Number})
}

func (s *Server) configHistory(w http.ResponseWriter, r *http.Request) {
	if !s.configStore(w) {
		return
	}
	limit := 20
	if err := limitParam(r.URL.Query(), 1000, &limit); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if limit == 0 {
		limit = 20
	}
	revs, err := s.o.Config.History(r.Context(), limit)
	if err != nil {
		s.internal(w, r, "read configuration history", err)
		return
	}
	if revs == nil {
		revs = []clusterconf.Revision{}
	}
	writeJSON(w, http.StatusOK, revs)
}

func (s *Server) reportGet(w http.ResponseWriter, r *http.Request) {
	if s.o.Reports == nil {
		writeError(w, http.StatusNotFound, "no reports on this node")
		return
	}
	now := s.now().UTC()
	day := now.AddDate(0, 0, -1).Format(time.DateOnly)
	if v := r.URL.Query().Get("day"); v != "" {
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "day: want YYYY-MM-DD, got "+strconv.Quote(v))
			return
		}
		if t.After(now) {
			writeError(w, http.StatusBadRequest, "day: "+v+" is in the future")
			return
		}
		day = v
	}
	rep, err := s.o.Reports.Get(r.Context(), day)
	if err == nil {
		writeJSON(w, http.StatusOK, ReportResult{Report: rep, Stored: true})
		return
	}
	if !errors.Is(err, report.ErrNotFound) {
		s.internal(w, r, "read report", err)
		return
	}
	// Not written (yet): today, or a day before the cluster's master wrote
	// one. The log still has it, so build it now without storing it.
	t, _ := time.Parse(time.DateOnly, day)
	rep, err = report.Build(r.Context(), s.o.Log, t, s.o.NodeID)
	if err != nil {
		s.internal(w, r, "build report", err)
		return
	}
	writeJSON(w, http.StatusOK, ReportResult{Report: rep})
}

// who names the author of a change for the audit trail: the operator the
// client says it acts for (OperatorHeader; what the token proves is only
// that it may), the client address and, behind a token, that it
// authenticated.
func (s *Server) who(r *http.Request) string {
	by := "admin API from " + r.RemoteAddr
	if s.o.Token != "" {
		by += " (token)"
	}
	by += " via " + s.o.NodeID
	if op := r.Header.Get(OperatorHeader); validOperator(op) {
		by = op + ", " + by
	}
	return by
}
