package armtemplate

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Date functions (learn.microsoft.com/azure/azure-resource-manager/templates/template-functions-date).

// parseDateTime reads the ISO 8601 forms ARM accepts for dateTimeAdd and
// dateTimeToEpoch, and the forms utcNow() and dateTimeAdd() write by
// default (yyyyMMddTHHmmssZ; M/d/yyyy h:mm:ss tt), so their results can be
// passed on.
func parseDateTime(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05Z07:00", "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04Z07:00", "2006-01-02",
		"20060102T150405Z", "1/2/2006 3:04:05 PM"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

var isoDuration = regexp.MustCompile(`^(-)?P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$`)

// dateTimeAdd(base, duration[, format]): base plus an ISO 8601 duration.
// Without a format the result is written in .NET's general ('G') form, as
// the documented example shows (base 2020-04-07 14:53:14Z + P3Y →
// "4/7/2023 2:53:14 PM").
func fnDateTimeAdd(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 2, 3); err != nil {
		return nil, err
	}
	ss, err := allStrings(c, a)
	if err != nil {
		return nil, err
	}
	base, ok := parseDateTime(ss[0])
	if !ok {
		return nil, errf("The template language function 'dateTimeAdd' has an invalid parameter: '%s' is not a valid date and time", ss[0])
	}
	m := isoDuration.FindStringSubmatch(ss[1])
	if m == nil || ss[1] == "P" || ss[1] == "PT" || strings.HasSuffix(ss[1], "T") {
		return nil, errf("The template language function 'dateTimeAdd' has an invalid parameter: '%s' is not a valid ISO 8601 duration", ss[1])
	}
	num := func(s string) int {
		if s == "" {
			return 0
		}
		n, err := strconv.Atoi(s)
		if err != nil || n > 100000 {
			return 100001
		}
		return n
	}
	sign := 1
	if m[1] == "-" {
		sign = -1
	}
	y, mo, w, d, h, mi := num(m[2]), num(m[3]), num(m[4]), num(m[5]), num(m[6]), num(m[7])
	for _, v := range []int{y, mo, w, d, h, mi} {
		if v > 100000 {
			return nil, errf("The template language function 'dateTimeAdd' has an invalid parameter: the duration '%s' is too large", ss[1])
		}
	}
	var sec float64
	if m[8] != "" {
		sec, _ = strconv.ParseFloat(m[8], 64)
		if sec > 1e9 {
			return nil, errf("The template language function 'dateTimeAdd' has an invalid parameter: the duration '%s' is too large", ss[1])
		}
	}
	t := base.AddDate(sign*y, sign*mo, sign*(7*w+d))
	t = t.Add(time.Duration(sign) * (time.Duration(h)*time.Hour + time.Duration(mi)*time.Minute + time.Duration(sec*float64(time.Second))))
	if t.Year() < 1 || t.Year() > 9999 {
		return nil, errf("The template language function 'dateTimeAdd' result is outside the range of dates")
	}
	if len(ss) == 3 {
		return formatTime(t, ss[2])
	}
	return formatTime(t, "M/d/yyyy h:mm:ss tt")
}

// dateTimeFromEpoch(int) → "2023-05-02T15:16:13Z".
func fnDateTimeFromEpoch(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 1, 1); err != nil {
		return nil, err
	}
	n, err := integer(c, a[0])
	if err != nil {
		return nil, err
	}
	if n < 0 || n > 253402300799 {
		return nil, errf("The template language function 'dateTimeFromEpoch' has an invalid parameter: '%d' is outside the range of dates", n)
	}
	return time.Unix(n, 0).UTC().Format("2006-01-02T15:04:05Z"), nil
}

func fnDateTimeToEpoch(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 1, 1); err != nil {
		return nil, err
	}
	s, err := str(c, a[0])
	if err != nil {
		return nil, err
	}
	t, ok := parseDateTime(s)
	if !ok {
		return nil, errf("The template language function 'dateTimeToEpoch' has an invalid parameter: '%s' is not a valid date and time", s)
	}
	return t.Unix(), nil
}

// formatTime writes t with a .NET date format: a standard one-letter
// format or a custom pattern (yyyy, MM, dd, HH, mm, ss, f…, tt, literals).
func formatTime(t time.Time, f string) (any, error) {
	t = t.UTC()
	if len(f) == 1 {
		// .NET standard formats in the invariant culture, as ARM writes
		// them (utcNow('d') → "03/05/2019" in template-functions-date#utcnow).
		std := map[string]string{
			"d": "MM/dd/yyyy", "D": "dddd, dd MMMM yyyy",
			"t": "HH:mm", "T": "HH:mm:ss",
			"g": "MM/dd/yyyy HH:mm", "G": "MM/dd/yyyy HH:mm:ss",
			"f": "dddd, dd MMMM yyyy HH:mm", "F": "dddd, dd MMMM yyyy HH:mm:ss", "U": "dddd, dd MMMM yyyy HH:mm:ss",
			"u": "yyyy'-'MM'-'dd HH':'mm':'ss'Z'", "s": "yyyy'-'MM'-'dd'T'HH':'mm':'ss",
			"o": "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffff'Z'", "O": "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffff'Z'",
			"r": "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'", "R": "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
			"y": "yyyy MMMM", "Y": "yyyy MMMM", "m": "MMMM dd", "M": "MMMM dd",
		}
		p, ok := std[f]
		if !ok {
			return nil, errf("The date and time format '%s' is not valid", f)
		}
		f = p
	}
	if len(f) > 256 {
		return nil, errf("The date and time format is too long")
	}
	var b strings.Builder
	for i := 0; i < len(f); {
		ch := f[i]
		j := i
		for j < len(f) && f[j] == ch {
			j++
		}
		n := j - i
		switch ch {
		case 'y':
			switch {
			case n <= 2:
				fmt.Fprintf(&b, "%0*d", n, t.Year()%100)
			default:
				fmt.Fprintf(&b, "%0*d", n, t.Year())
			}
		case 'M':
			switch n {
			case 1:
				fmt.Fprintf(&b, "%d", int(t.Month()))
			case 2:
				fmt.Fprintf(&b, "%02d", int(t.Month()))
			case 3:
				b.WriteString(t.Month().String()[:3])
			default:
				b.WriteString(t.Month().String())
			}
		case 'd':
			switch n {
			case 1:
				fmt.Fprintf(&b, "%d", t.Day())
			case 2:
				fmt.Fprintf(&b, "%02d", t.Day())
			case 3:
				b.WriteString(t.Weekday().String()[:3])
			default:
				b.WriteString(t.Weekday().String())
			}
		case 'H':
			fmt.Fprintf(&b, "%0*d", min(n, 2), t.Hour())
		case 'h':
			h := t.Hour() % 12
			if h == 0 {
				h = 12
			}
			fmt.Fprintf(&b, "%0*d", min(n, 2), h)
		case 'm':
			fmt.Fprintf(&b, "%0*d", min(n, 2), t.Minute())
		case 's':
			fmt.Fprintf(&b, "%0*d", min(n, 2), t.Second())
		case 'f', 'F':
			if n > 7 {
				return nil, errf("The date and time format '%s' is not valid", f)
			}
			frac := fmt.Sprintf("%07d", t.Nanosecond()/100)[:n]
			if ch == 'F' {
				frac = strings.TrimRight(frac, "0")
			}
			b.WriteString(frac)
		case 't':
			ampm := "AM"
			if t.Hour() >= 12 {
				ampm = "PM"
			}
			b.WriteString(ampm[:min(n, 2)])
		case 'K', 'z':
			b.WriteString("Z")
		case '\'', '"':
			end := strings.IndexByte(f[i+1:], ch)
			if end < 0 {
				return nil, errf("The date and time format '%s' is not valid: unterminated quote", f)
			}
			b.WriteString(f[i+1 : i+1+end])
			j = i + 2 + end
		case '\\':
			if i+1 < len(f) {
				b.WriteByte(f[i+1])
			}
			j = i + 2
		default:
			b.WriteString(f[i:j])
		}
		i = j
	}
	return b.String(), nil
}
