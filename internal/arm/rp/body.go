package rp

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tenantbridge/tenantbridge/internal/httpx"
)

// MaxBody bounds a request body.
const MaxBody = 1 << 20

// MaxPageSize is the most items of one page of a list: ARM's page size
// for resource and resource group lists ($top is capped at it).
const MaxPageSize = 1000

// ReadBody decodes a JSON body leniently (ARM ignores read-only and
// unknown properties that clients echo back), within MaxBody.
func ReadBody(rq *Request, v any) error {
	if ct := rq.R.Header.Get("Content-Type"); ct != "" && !strings.Contains(strings.ToLower(ct), "json") {
		return NewError(http.StatusUnsupportedMediaType, "UnsupportedMediaType", "The content media type '%s' is not supported. Only 'application/json' is supported.", SafeText(ct))
	}
	body := http.MaxBytesReader(rq.W, rq.R.Body, MaxBody)
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return NewError(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "The request content size exceeds the maximum size of %d bytes.", MaxBody)
		}
		return NewError(http.StatusBadRequest, "InvalidRequestContent", "The request content was invalid and could not be deserialized: '%s'.", SafeText(err.Error()))
	}
	if dec.More() {
		return NewError(http.StatusBadRequest, "InvalidRequestContent", "The request content was invalid and could not be deserialized: 'trailing data after the JSON value'.")
	}
	return nil
}

// WriteJSON answers v with status; a HEAD gets the status alone (204 for
// a resource found, as ARM answers it).
func WriteJSON(rq *Request, status int, v any) error {
	if rq.R.Method == http.MethodHead {
		if status == http.StatusOK {
			status = http.StatusNoContent
		}
		rq.W.WriteHeader(status)
		return nil
	}
	httpx.WriteJSON(rq.W, status, v)
	return nil
}

// List is ARM's collection shape: one page of it, and the absolute URL of
// the next page when there is one (the SDKs' pagers follow nextLink until
// it is absent).
type List[T any] struct {
	Value    []T    `json:"value"`
	NextLink string `json:"nextLink,omitempty"`
}

// PageRequest is where one page of a list starts and how long it is.
type PageRequest struct {
	// After is the sort key of the last item of the previous page
	// (decoded from the skip token); "" for the first page.
	After string
	Size  int
	// TokenName is the query parameter that carries the skip token:
	// $skiptoken for Microsoft.Resources lists, $skipToken for
	// Microsoft.Authorization's.
	TokenName string
}

// PageOf reads the paging parameters of a list request: the skip token
// (any letter case) and, where the operation takes one (top), $top, which
// caps the page at 1..MaxPageSize items.
func (rq *Request) PageOf(tokenName string, top bool) (PageRequest, error) {
	p := PageRequest{Size: rq.door.PageSize(), TokenName: tokenName}
	for k, vs := range rq.R.URL.Query() {
		switch {
		case strings.EqualFold(k, "$skiptoken") && len(vs) > 0 && vs[0] != "":
			raw, err := base64.RawURLEncoding.DecodeString(vs[0])
			if err != nil || !utf8.Valid(raw) || len(raw) > 2048 {
				return p, NewError(http.StatusBadRequest, "InvalidSkipToken", "The skip token '%s' is not valid.", SafeText(vs[0]))
			}
			p.After = string(raw)
		case top && strings.EqualFold(k, "$top") && len(vs) > 0:
			n, err := strconv.Atoi(vs[0])
			if err != nil || n < 1 {
				return p, NewError(http.StatusBadRequest, "InvalidQueryParameterValue", "The value '%s' of the query parameter '$top' is not valid: it must be a positive integer.", SafeText(vs[0]))
			}
			p.Size = min(n, MaxPageSize)
		}
	}
	return p, nil
}

// Page selects one page of items, which must be sorted by key, ascending
// and unique: the items after p.After that keep accepts (nil accepts all),
// at most p.Size of them. next is the key of the page's last item when
// another accepted item follows, else "".
func Page[T any](p PageRequest, items []T, key func(T) string, keep func(T) (bool, error)) (out []T, next string, err error) {
	for _, it := range items {
		if p.After != "" && key(it) <= p.After {
			continue
		}
		if keep != nil {
			ok, err := keep(it)
			if err != nil {
				return nil, "", err
			}
			if !ok {
				continue
			}
		}
		if len(out) == p.Size {
			return out, key(out[len(out)-1]), nil
		}
		out = append(out, it)
	}
	return out, "", nil
}

// NextLink is the absolute URL of the page after the one that ends at
// key next ("" when there is none): this request's URL with the skip
// token replaced, every other parameter ($filter, $top, api-version) kept.
func NextLink(rq *Request, p PageRequest, next string) string {
	if next == "" {
		return ""
	}
	base := httpx.InfoFrom(rq.Ctx).BaseURL
	if base == "" {
		base = "https://" + rq.R.Host
	}
	q := rq.R.URL.Query()
	for k := range q {
		if strings.EqualFold(k, "$skiptoken") {
			delete(q, k)
		}
	}
	q.Set(p.TokenName, base64.RawURLEncoding.EncodeToString([]byte(next)))
	return strings.TrimRight(base, "/") + rq.R.URL.EscapedPath() + "?" + q.Encode()
}

// WritePage writes one page of views, sorted by key, with its nextLink.
func WritePage[V any](rq *Request, p PageRequest, views []V, key func(V) string) error {
	out, next, err := Page(p, views, key, nil)
	if err != nil {
		return err
	}
	if out == nil {
		out = []V{}
	}
	return WriteJSON(rq, http.StatusOK, List[V]{Value: out, NextLink: NextLink(rq, p, next)})
}

// WriteReadable writes one page of the ARM list of the views of the items
// whose id the caller may perform action on, in the order of their ids
// (case-insensitively), with $top and the skip token honoured and a
// nextLink when more follow. Only the items the page needs are decided.
func WriteReadable[T, V any](rq *Request, action string, items []T, idOf func(T) string, view func(T) (V, error)) error {
	p, err := rq.PageOf("$skiptoken", true)
	if err != nil {
		return err
	}
	key := func(it T) string { return strings.ToLower(idOf(it)) }
	items = slices.Clone(items)
	slices.SortFunc(items, func(a, b T) int { return strings.Compare(key(a), key(b)) })
	items = slices.CompactFunc(items, func(a, b T) bool { return key(a) == key(b) })
	readable, next, err := Page(p, items, key, func(it T) (bool, error) {
		d, err := rq.Decide(action, idOf(it))
		return d.Allowed, err
	})
	if err != nil {
		return err
	}
	out := make([]V, 0, len(readable))
	for _, it := range readable {
		v, err := view(it)
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	return WriteJSON(rq, http.StatusOK, List[V]{Value: out, NextLink: NextLink(rq, p, next)})
}
