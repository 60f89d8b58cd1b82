package server

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/httpx"
)

// DefaultBodyTimeout is how long a client has, from the moment its request
// reaches the front door, to send the request's whole body. Bodies here
// are small (8 MiB at most, usually a form or a JSON document of a few
// KiB), so 30 seconds is generous for any real client on any real link,
// and it is what stops a client that declares a body and then trickles it
// a byte at a time from holding a connection (and a goroutine) for ever.
const DefaultBodyTimeout = 30 * time.Second

// errBodyTimeout is what a handler's read of the body returns once the
// body deadline has passed. It wraps os.ErrDeadlineExceeded, as the
// connection's own error does.
var errBodyTimeout = &bodyTimeoutError{}

type bodyTimeoutError struct{}

func (*bodyTimeoutError) Error() string   { return "server: the request body was not received in time" }
func (*bodyTimeoutError) Unwrap() error   { return os.ErrDeadlineExceeded }
func (*bodyTimeoutError) Timeout() bool   { return true }
func (*bodyTimeoutError) Temporary() bool { return false }

var _ net.Error = errBodyTimeout

// timedBody is a request body read under a deadline. The deadline is a read
// deadline on the connection (on the stream, for HTTP/2) set before the
// handler runs, so a read blocked on a silent client is interrupted rather
// than polled.
//
// It is cleared as soon as the body reaches its end: after that, nothing
// the client sends belongs to this request, and the request may rightly
// take minutes (a Service Bus receive long-polls after reading its body).
// On HTTP/1, net/http starts a background read of the connection at the
// end of the body, to notice a client that hangs up; a read deadline
// still armed then would fire in that read and cancel the request's
// context. net/http clears the deadline when it starts that read; we
// clear it too, so as not to depend on that, and so that no HTTP/2
// stream timer stays armed. That is also why the deadline is set only
// for requests that have a body: for those without one, the background
// read is already running when the handler starts, and a deadline set
// then would cut a long poll that never reads its (empty) body.
type timedBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	expired atomic.Bool // the deadline passed before the body's end
	ended   bool        // EOF seen and the deadline cleared
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		if !b.ended {
			b.ended = true
			_ = b.rc.SetReadDeadline(time.Time{})
		}
	case err != nil && isTimeout(err):
		b.expired.Store(true)
		err = errBodyTimeout
	}
	return n, err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// hasBody reports whether r declares a body: a Content-Length above zero,
// or an unknown length (chunked, or an HTTP/2 stream left open).
func hasBody(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
}

// limitBody arms the body deadline for r, if it has a body, and returns
// the body to read in its place; nil when r has none or the connection
// cannot take a deadline (then the server's ReadTimeout still bounds it).
func limitBody(w http.ResponseWriter, r *http.Request, timeout time.Duration) *timedBody {
	if !hasBody(r) {
		return nil
	}
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return nil
	}
	return &timedBody{ReadCloser: r.Body, rc: rc}
}

// writeBodyTimeout answers a request whose body did not arrive in time:
// 408 Request Timeout, and the connection is closed, since the rest of the
// body may still be on its way. It is the front door's own answer, in the
// same JSON shape as its 421, because no surface saw a whole request.
func writeBodyTimeout(w http.ResponseWriter, timeout time.Duration) {
	h := w.Header()
	for k := range h {
		if k != "X-Ms-Request-Id" {
			delete(h, k)
		}
	}
	h.Set("Connection", "close")
	httpx.WriteJSON(w, http.StatusRequestTimeout, map[string]any{"error": map[string]string{
		"code":    "RequestTimeout",
		"message": "The request body was not received within " + timeout.String() + ".",
	}})
}
