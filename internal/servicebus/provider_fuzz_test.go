package servicebus

import (
	"math"
	"testing"
)

func TestISODuration(t *testing.T) {
	for _, c := range []struct {
		in   string
		want isoDuration
		out  string
	}{
		{"PT1M", tickMinute, "PT1M"},
		{"PT60S", tickMinute, "PT1M"},
		{"PT5M", 5 * tickMinute, "PT5M"},
		{"PT10M", 10 * tickMinute, "PT10M"},
		{"PT20S", 20 * tickSecond, "PT20S"},
		{"P7D", 7 * tickDay, "P7D"},
		{"P1W", 7 * tickDay, "P7D"},
		{"P1DT2H3M4.5S", tickDay + 2*tickHour + 3*tickMinute + 4*tickSecond + 5_000_000, "P1DT2H3M4.5S"},
		{"PT0.0000001S", 1, "PT0.0000001S"},
		{"PT0.123456789S", 1234567, "PT0.1234567S"},
		{"PT0S", 0, "PT0S"},
		{"P10675199DT2H48M5.4775807S", math.MaxInt64, "P10675199DT2H48M5.4775807S"},
	} {
		d, err := parseISODuration(c.in)
		if err != nil || d != c.want || d.String() != c.out {
			t.Errorf("%q: %d %v %q, want %d %q", c.in, d, err, d.String(), c.want, c.out)
		}
	}
	for _, bad := range []string{"", "P", "PT", "1M", "PT1", "P1S", "PT1D", "P1.5D", "PT1M1H", "P1DT", "-PT1M", "PT-1M", "PT.5S", "PT1.S",
		"P10675199DT2H48M5.4775808S", "P99999999999999999999D", "P1D1D", "PTT1M", "pt1m", "PT1M "} {
		if d, err := parseISODuration(bad); err == nil {
			t.Errorf("%q parsed as %d", bad, d)
		}
	}
}

// FuzzISODuration: the parser never panics; what it accepts is
// non-negative and formats to a canonical text that parses back to the
// same duration; and every non-negative duration round-trips.
func FuzzISODuration(f *testing.F) {
	for _, s := range []string{"PT1M", "P10675199DT2H48M5.4775807S", "P1Y2M3W4DT5H6M7.89S", "PT0S", "P1DT", "PT1.00000001S", "P99999999999999999999D"} {
		f.Add(s, int64(0))
	}
	f.Add("", int64(math.MaxInt64))
	f.Add("PT5M", int64(1234567890123))
	f.Fuzz(func(t *testing.T, s string, n int64) {
		if d, err := parseISODuration(s); err == nil {
			if d < 0 {
				t.Fatalf("%q: negative %d", s, d)
			}
			text := d.String()
			again, err := parseISODuration(text)
			if err != nil || again != d || again.String() != text {
				t.Fatalf("%q: %d formats to %q, which parses to %d (%v)", s, d, text, again, err)
			}
		}
		if n < 0 {
			n = -(n + 1)
		}
		d := isoDuration(n)
		again, err := parseISODuration(d.String())
		if err != nil || again != d {
			t.Fatalf("%d: %q parses to %d (%v)", n, d.String(), again, err)
		}
	})
}
