package console

import (
	"cmp"
	"html/template"
	"net/http"
	"slices"
	"time"

	"github.com/mxgate/mxgate/report"
)

func (c *Console) reportsRoutes() {
	c.mux.HandleFunc("GET /reports", c.authed(c.reportsPage))
}

// chartDays is how many days the charts show, ending with the chosen one.
const chartDays = 14

// reportsData is one day's report and the charts of the days up to it.
type reportsData struct {
	Day, Prev, Next, Today string // Next "" when the chosen day is today
	Report                 report.Report
	State                  string
	Sections               []report.Section
	ByVerdict, ByNode      template.HTML // stacked bar charts, drawn by stackedBars
	Missing                []string      // days the charts lack, with the API's reason
	Failed                 string
}

func (c *Console) reportsPage(w http.ResponseWriter, r *http.Request, s *session) {
	now := c.o.Now().UTC()
	today := report.StartOfDay(now)
	day := today.AddDate(0, 0, -1) // as mxgate report: yesterday, the last whole day
	d := reportsData{Today: today.Format(time.DateOnly)}
	if v := r.URL.Query().Get("day"); v != "" {
		t, err := time.Parse(time.DateOnly, v)
		if err != nil || t.After(today) {
			d.Day, d.Failed = v, "day: want a date like "+d.Today+", not in the future"
			c.render(w, r, s, http.StatusBadRequest, "reports", "Reports", d)
			return
		}
		day = t
	}
	d.Day = day.Format(time.DateOnly)
	d.Prev = day.AddDate(0, 0, -1).Format(time.DateOnly)
	if day.Before(today) {
		d.Next = day.AddDate(0, 0, 1).Format(time.DateOnly)
	}
	api := c.client(r, s)
	res, err := api.Report(r.Context(), d.Day)
	if err != nil {
		d.Failed = apiMessage(err)
		c.render(w, r, s, http.StatusBadGateway, "reports", "Reports", d)
		return
	}
	d.Report, d.State, d.Sections = res.Report, res.Report.State(res.Stored), res.Report.Sections()

	// One report per day of the charts; a day without one is a gap, told
	// under the charts, not a failed page.
	var reps []report.Report
	for i := chartDays - 1; i >= 0; i-- {
		t := day.AddDate(0, 0, -i)
		if i == 0 {
			reps = append(reps, res.Report)
			continue
		}
		rr, err := api.Report(r.Context(), t.Format(time.DateOnly))
		if err != nil {
			d.Missing = append(d.Missing, t.Format(time.DateOnly)+": "+apiMessage(err))
			rr.Report = report.Report{Day: t.Format(time.DateOnly)}
		}
		reps = append(reps, rr.Report)
	}
	labels := make([]string, len(reps))
	for i, rr := range reps {
		labels[i] = shortDay(rr.Day)
	}
	d.ByVerdict = stackedBars("Messages per day by verdict", labels, perDay(reps, func(r report.Report) map[string]int { return r.ByVerdict }))
	d.ByNode = stackedBars("Messages per day by node", labels, perDay(reps, func(r report.Report) map[string]int { return r.ByNode }))
	c.render(w, r, s, http.StatusOK, "reports", "Reports "+d.Day, d)
}

// perDay makes one series per key of the reports' counts (the largest
// first, so the legend reads in the order of importance), one value per day.
func perDay(reps []report.Report, counts func(report.Report) map[string]int) []series {
	totals := map[string]int{}
	for _, r := range reps {
		for k, n := range counts(r) {
			totals[k] += n
		}
	}
	var keys []string
	for k, n := range totals {
		if n > 0 {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(totals[b], totals[a]), cmp.Compare(a, b)) })
	out := make([]series, len(keys))
	for i, k := range keys {
		out[i] = series{Name: k, Values: make([]float64, len(reps))}
		for j, r := range reps {
			out[i].Values[j] = float64(counts(r)[k])
		}
	}
	return out
}

// shortDay labels a bar: MM-DD of a YYYY-MM-DD day.
func shortDay(day string) string {
	if len(day) == len(time.DateOnly) {
		return day[5:]
	}
	return day
}
