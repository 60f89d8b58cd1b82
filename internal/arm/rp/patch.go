package rp

// PATCH (the REST specs' Update operations) as a merge into PUT.

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// PatchAsPut serves a PATCH of a resource whose current state, as the
// body of a PUT that would leave it as it is, is current: the patch's
// members named in fields replace current's (and "properties" is merged
// member by member), and put serves the result as a PUT, with the request
// still a PATCH (IsPatch) so that put refuses to create what does not
// exist. Members of the patch outside fields are ignored, as the
// service ignores what its Update schema does not have.
//
// current must hold only what a PUT restates without effect: a setting
// that a PUT may only turn one way (Key Vault's enablePurgeProtection)
// stays out of it unless the patch names it.
func PatchAsPut(rq *Request, current map[string]any, fields []string, put func(*Request) error) error {
	var patch map[string]json.RawMessage
	if err := ReadBody(rq, &patch); err != nil {
		return err
	}
	if patch == nil {
		return BadRequest("The request content must be a JSON object.")
	}
	merged := make(map[string]any, len(current)+len(patch))
	for k, v := range current {
		merged[k] = v
	}
	for _, f := range fields {
		raw, ok := lookup(patch, f)
		if !ok {
			continue
		}
		if f != "properties" {
			merged[f] = raw
			continue
		}
		var props map[string]json.RawMessage
		if err := json.Unmarshal(raw, &props); err != nil {
			return NewError(http.StatusBadRequest, "InvalidRequestContent", "The request content was invalid and could not be deserialized: 'properties must be an object'.")
		}
		into := map[string]any{}
		if cur, ok := current["properties"].(map[string]any); ok {
			for k, v := range cur {
				into[k] = v
			}
		}
		for k, v := range props {
			into[k] = v
		}
		merged["properties"] = into
	}
	body, err := json.Marshal(merged)
	if err != nil {
		return InternalError(err)
	}
	rq.R.Body = io.NopCloser(bytes.NewReader(body))
	rq.R.Header.Set("Content-Type", "application/json")
	return put(rq)
}

// lookup finds member name of a JSON object whatever its letter case, as
// ARM's deserializer does.
func lookup(obj map[string]json.RawMessage, name string) (json.RawMessage, bool) {
	if v, ok := obj[name]; ok {
		return v, true
	}
	for k, v := range obj {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return nil, false
}

// IsPatch reports whether the request is a PATCH (served through
// PatchAsPut): a PUT handler then answers ResourceNotFound instead of
// creating.
func (rq *Request) IsPatch() bool { return rq.R != nil && rq.R.Method == http.MethodPatch }
