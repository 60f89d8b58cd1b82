package servicebus

import (
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestErrorBody(t *testing.T) {
	got := string(ErrorBody(401, "ExpiredToken: The token is expired."))
	want := "<Error><Code>401</Code><Detail>ExpiredToken: The token is expired.</Detail></Error>"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	got = string(ErrorBody(400, `a <b> & "c" 'd'`+"\x00"))
	want = "<Error><Code>400</Code><Detail>a &lt;b&gt; &amp; &#34;c&#34; &#39;d&#39;\uFFFD</Detail></Error>"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestFormatErrorDetail(t *testing.T) {
	at := time.Date(2022, 12, 12, 13, 24, 15, 0, time.FixedZone("X", 3600))
	got := FormatErrorDetail("Unauthorized access.", "3b3548f0-4a4b-4412-a3f7-01710aba1c50", at)
	want := "Unauthorized access. TrackingId:3b3548f0-4a4b-4412-a3f7-01710aba1c50, Timestamp:2022-12-12T12:24:15"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestWriteError(t *testing.T) {
	rec := httptest.NewRecorder()
	rec.Header().Set("BrokerProperties", "{}")
	WriteError(rec, http.StatusGone, "The messaging entity 'ns:Queue:orders' could not be found <x>.")
	if rec.Code != http.StatusGone {
		t.Fatalf("status %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/xml; charset=utf-8" {
		t.Fatalf("Content-Type %q", ct)
	}
	if rec.Header().Get("BrokerProperties") != "" {
		t.Fatal("BrokerProperties left on an error")
	}
	var e struct {
		XMLName xml.Name `xml:"Error"`
		Code    int      `xml:"Code"`
		Detail  string   `xml:"Detail"`
	}
	// Decoded the way azure-service-bus-go's ManagementError is.
	if err := xml.Unmarshal(rec.Body.Bytes(), &e); err != nil {
		t.Fatal(err)
	}
	if e.Code != 410 || !strings.HasPrefix(e.Detail, "The messaging entity 'ns:Queue:orders' could not be found <x>. TrackingId:") {
		t.Fatalf("%+v", e)
	}
	re := regexp.MustCompile(`TrackingId:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}, Timestamp:\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$`)
	if !re.MatchString(e.Detail) {
		t.Fatalf("detail suffix: %s", e.Detail)
	}
}
