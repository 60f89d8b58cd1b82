package servicebus

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// Service Bus REST answers an error with a small XML document, not JSON:
//
//	HTTP/1.1 401 Unauthorized
//	Content-Type: application/xml; charset=utf-8
//
//	<Error><Code>401</Code><Detail>ExpiredToken: The token is expired..TrackingId:16ed6fad-77ab-4c16-b4c3-9d92e021e037_15,TimeStamp:2/26/2012 7:41:03 AM</Detail></Error>
//
// Sources: a captured REST exchange quoted in a public write-up of
// Service Bus REST 401 handling (the trace above); azure-service-bus-go's
// ManagementError, which parses exactly <Error><Code>int</Code><Detail>
// string</Detail></Error>; and current service messages, which end the
// detail with "TrackingId:<guid>_G12, SystemTracker:<ns>:<entity>,
// Timestamp:2022-12-12T13:24:15" (paolosalvatori/ServiceBusExplorer
// issues 78 and 707). We write the current suffix without SystemTracker,
// which needs the entity the handler knows and this file does not.

// ErrorContentType is the Content-Type of an error body.
const ErrorContentType = "application/xml; charset=utf-8"

// WriteError writes a Service Bus REST error: the status, the XML body
// with detail XML-escaped, and a TrackingId and Timestamp appended to the
// detail as the service does, so a client's log line looks familiar and
// can be matched with ours.
func WriteError(w http.ResponseWriter, status int, detail string) {
	body := ErrorBody(status, FormatErrorDetail(detail, uuid.NewString(), time.Now())) // TrackingIds are GUIDs
	h := w.Header()
	h.Set("Content-Type", ErrorContentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Del("BrokerProperties")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// FormatErrorDetail appends the tracking suffix to detail:
// "<detail> TrackingId:<id>, Timestamp:<UTC, 2006-01-02T15:04:05>".
func FormatErrorDetail(detail, trackingID string, at time.Time) string {
	return fmt.Sprintf("%s TrackingId:%s, Timestamp:%s", detail, trackingID, at.UTC().Format("2006-01-02T15:04:05"))
}

// ErrorBody renders <Error><Code>status</Code><Detail>detail</Detail></Error>
// with detail XML-escaped (characters XML cannot hold become U+FFFD).
func ErrorBody(status int, detail string) []byte {
	var b bytes.Buffer
	b.WriteString("<Error><Code>")
	b.WriteString(strconv.Itoa(status))
	b.WriteString("</Code><Detail>")
	_ = xml.EscapeText(&b, []byte(detail)) // writes to a bytes.Buffer: cannot fail
	b.WriteString("</Detail></Error>")
	return b.Bytes()
}

// Store contention. A request the store could not serve because its locks
// were busy (store.ErrBusy) changed nothing and may succeed if retried, so
// it is answered as Service Bus answers its own overload, never as an
// internal error: REST gets 503 with Retry-After ("ServerBusy: the server
// is busy"; Service Bus documents ServerBusyException, "Service isn't able
// to process the request at this time", for which the client "can wait
// for a few seconds and retry the operation":
// https://learn.microsoft.com/azure/service-bus-messaging/service-bus-messaging-exceptions),
// and AMQP the condition com.microsoft:server-busy, which azservicebus
// treats as a temporary error that needs no recovery and retries
// (internal/errors.go, amqpConditionsToRecoveryKind: RecoveryKindNone).

// CondServerBusy is the AMQP error condition of a busy server.
const CondServerBusy = "com.microsoft:server-busy"

// serverBusyDetail is the REST and AMQP description of a busy server.
const serverBusyDetail = "ServerBusy: The server is busy. Please retry the operation after the interval in the Retry-After header."

// WriteInternal writes the answer to an unexpected error err: 503 with
// Retry-After when it is store contention, else 500. The caller logs err.
func WriteInternal(w http.ResponseWriter, err error) {
	if errors.Is(err, store.ErrBusy) {
		w.Header().Set("Retry-After", store.BusyRetryAfter)
		WriteError(w, http.StatusServiceUnavailable, serverBusyDetail)
		return
	}
	WriteError(w, http.StatusInternalServerError, "The server encountered an internal error.")
}

// AMQPCondition is the AMQP error condition and description for an
// unexpected error err: com.microsoft:server-busy for store contention,
// else amqp:internal-error with internal as its description.
func AMQPCondition(err error, internal string) (condition, description string) {
	if errors.Is(err, store.ErrBusy) {
		return CondServerBusy, serverBusyDetail
	}
	return "amqp:internal-error", internal
}
