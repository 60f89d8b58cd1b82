package jwtparse

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Members are the members of a JSON object, by name, undecoded. A JWT's
// header and payload are read as Members, and so can other JOSE documents
// (a JWK, a discovery document): a member name matches only when it is
// spelled exactly, which struct decoding does not ensure.
type Members map[string]json.RawMessage

// Object decodes a JSON object into its members. JSON null, or anything
// but an object, is an error.
func Object(data []byte) (Members, error) {
	var m Members
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	if m == nil { // the JSON was null
		return nil, errors.New("not an object")
	}
	return m, nil
}

// StringMember reads m[name] as a string. A member that is absent or null
// gives ok=false; one of another type is an error.
func (m Members) StringMember(name string) (s string, ok bool, err error) {
	raw, present := m[name]
	if !present || string(raw) == "null" {
		return "", false, nil
	}
	if len(raw) == 0 || raw[0] != '"' {
		return "", false, fmt.Errorf("%s is not a string", name)
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, err
	}
	return s, true, nil
}

// Audiences reads m[name] as an aud claim: a string, or an array of
// strings, none empty. Absent, null or an empty array is an error, and so
// are more than maxValues values unless maxValues is zero.
func (m Members) Audiences(name string, maxValues int) ([]string, error) {
	raw := m[name]
	missing := func() ([]string, error) {
		return nil, fmt.Errorf("%s is missing or not a string or array of strings", name)
	}
	if len(raw) == 0 {
		return missing()
	}
	var out []string
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return missing()
		}
		out = []string{s}
	case '[':
		if err := json.Unmarshal(raw, &out); err != nil {
			return missing()
		}
	default:
		return missing()
	}
	if len(out) == 0 || maxValues > 0 && len(out) > maxValues {
		return missing()
	}
	for _, s := range out {
		if s == "" {
			return nil, fmt.Errorf("%s has an empty value", name)
		}
	}
	return out, nil
}

// maxNumericDate is the end of year 9999: later dates are not dates.
const maxNumericDate = 253402300799

// NumericDate reads m[name] as an RFC 7519 NumericDate: a JSON number of
// seconds since the epoch (fractions allowed), not negative and not after
// the end of year 9999. Absent or null gives ok=false.
func (m Members) NumericDate(name string) (t time.Time, ok bool, err error) {
	raw, present := m[name]
	if !present || string(raw) == "null" {
		return time.Time{}, false, nil
	}
	// A JSON number, not a string holding one.
	if len(raw) == 0 || !(raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
		return time.Time{}, false, fmt.Errorf("%s is not a number", name)
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > maxNumericDate {
		return time.Time{}, false, fmt.Errorf("%s is out of range", name)
	}
	sec := math.Floor(f)
	return time.Unix(int64(sec), int64((f-sec)*1e9)).UTC(), true, nil
}
