package console

import (
	"strings"
	"testing"
)

func TestStackedBars(t *testing.T) {
	svg := string(stackedBars("by verdict", []string{"10:00", "<b>"}, []series{
		{Name: "clean", Values: []float64{3, 0}},
		{Name: `spam"><script>x</script>`, Values: []float64{1, 2}},
	}))
	for _, want := range []string{`<svg class="chart"`, "&lt;b&gt;", "spam&#34;&gt;&lt;script&gt;", ">5<"} {
		if !strings.Contains(svg, want) {
			t.Errorf("chart lacks %q:\n%s", want, svg)
		}
	}
	if strings.Contains(svg, "<script>") || strings.Contains(svg, "<b>") {
		t.Errorf("chart has unescaped text:\n%s", svg)
	}
	if strings.Contains(svg, ">2.5<") {
		t.Error("a count axis labelled 2.5")
	}
	if n := strings.Count(svg, "<rect"); n != 3+2 {
		t.Errorf("%d rects, want 3 bars and 2 legend keys", n)
	}
	for v, want := range map[float64]float64{0: 0, 3: 5, 4: 5, 7: 10, 10: 10, 11: 20, 0.3: 0.5} {
		if got := niceCeil(v); got != want {
			t.Errorf("niceCeil(%g) = %g, want %g", v, got, want)
		}
	}
}
