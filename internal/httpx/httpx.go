// Package httpx holds the few HTTP helpers every surface shares: the request
// information the front door attaches to a request's context (its id, the
// client's address, the public base URL it was reached by) and strict JSON
// reading and writing. It is a leaf package so that surfaces need not import
// the server that routes to them.
package httpx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

type ctxKey int

const infoKey ctxKey = 0

// Info is what the front door knows about a request.
type Info struct {
	RequestID  string
	ClientAddr string
	// BaseURL is the scheme and authority the client used, e.g.
	// "https://login.microsoftonline.com" or "https://127.0.0.1:8443".
	BaseURL string
}

// WithInfo returns ctx carrying info.
func WithInfo(ctx context.Context, info Info) context.Context {
	return context.WithValue(ctx, infoKey, info)
}

// InfoFrom returns the request information in ctx (zero if none).
func InfoFrom(ctx context.Context) Info {
	info, _ := ctx.Value(infoKey).(Info)
	return info
}

// BaseURL returns the public base URL the request came in on. Without the
// front door (in a unit test) it is derived from the request itself.
func BaseURL(r *http.Request) string {
	if b := InfoFrom(r.Context()).BaseURL; b != "" {
		return b
	}
	return "https://" + r.Host
}

// WriteJSON writes v as JSON with the status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":"internal encoding error"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// ErrBodyTooLarge is returned by ReadJSON for a body over its limit.
var ErrBodyTooLarge = errors.New("request body is too large")

// ReadJSON decodes a JSON object body of at most max bytes into v. It is
// strict: unknown fields, trailing data and wrong types are errors whose
// messages are safe to return to the client.
func ReadJSON(r *http.Request, max int64, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.Contains(strings.ToLower(ct), "json") {
		return fmt.Errorf("content type %q is not JSON", ct)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return fmt.Errorf("reading body: %w", err)
	}
	if int64(len(body)) > max {
		return ErrBodyTooLarge
	}
	return DecodeJSON(body, v)
}

// DecodeJSON is ReadJSON's decoding step, for bodies already read.
func DecodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return errors.New("request body is empty")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return fmt.Errorf("invalid JSON at offset %d", syn.Offset)
		case errors.As(err, &typ):
			return fmt.Errorf("property %q has the wrong type: expected %s", typ.Field, typ.Type)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return fmt.Errorf("invalid property %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
		}
		return fmt.Errorf("invalid JSON: %v", err)
	}
	if dec.More() {
		return errors.New("unexpected data after the JSON value")
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}
