package vault

import (
	"net/http"
	"regexp"
	"strings"
)

// op is one operation of the secrets data plane.
type op int

const (
	opNone op = iota
	opSet
	opGet
	opList
	opVersions
	opUpdate
	opDelete
	opListDeleted
	opGetDeleted
	opRecover
	opPurge
	opBackup
	opRestore
)

// route is a parsed request path.
type route struct {
	op      op
	name    string // secret name as given ("" for list and restore)
	version string // "" = latest
	// badName is set when the path names a secret with an invalid name.
	badName bool
	// badMethod is set when the path is known but the method is not.
	badMethod bool
}

var (
	secretName = regexp.MustCompile(`^[0-9a-zA-Z-]{1,127}$`)
	versionID  = regexp.MustCompile(`^[0-9a-fA-F]{32}$`)
)

// parsePath maps a method and path to an operation. It never fails with
// anything but opNone (unknown path) or a flag, whatever the input.
func parsePath(method, path string) route {
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(segs) == 0 || len(segs) > 4 {
		return route{}
	}
	// A trailing slash (GET /secrets/{name}/ is "latest") leaves an empty
	// last segment; drop exactly one.
	if len(segs) > 1 && segs[len(segs)-1] == "" {
		segs = segs[:len(segs)-1]
	}
	for _, s := range segs[1:] {
		if s == "" {
			return route{}
		}
	}
	var r route
	want := func(m string, o op) {
		if method == m {
			r.op = o
		} else if r.op == opNone {
			r.badMethod = true
		}
	}
	switch {
	case strings.EqualFold(segs[0], "secrets"):
		switch len(segs) {
		case 1:
			want(http.MethodGet, opList)
		case 2:
			if strings.EqualFold(segs[1], "restore") && method == http.MethodPost {
				r.op = opRestore
				return r
			}
			r.name = segs[1]
			switch method {
			case http.MethodPut:
				r.op = opSet
			case http.MethodGet:
				r.op = opGet
			case http.MethodPatch:
				r.op = opUpdate
			case http.MethodDelete:
				r.op = opDelete
			default:
				r.badMethod = true
			}
		case 3:
			r.name = segs[1]
			switch {
			case strings.EqualFold(segs[2], "versions"):
				want(http.MethodGet, opVersions)
			case strings.EqualFold(segs[2], "backup"):
				want(http.MethodPost, opBackup)
			default:
				r.version = segs[2]
				switch method {
				case http.MethodGet:
					r.op = opGet
				case http.MethodPatch:
					r.op = opUpdate
				default:
					r.badMethod = true
				}
			}
		default:
			return route{}
		}
	case strings.EqualFold(segs[0], "deletedsecrets"):
		switch len(segs) {
		case 1:
			want(http.MethodGet, opListDeleted)
		case 2:
			r.name = segs[1]
			switch method {
			case http.MethodGet:
				r.op = opGetDeleted
			case http.MethodDelete:
				r.op = opPurge
			default:
				r.badMethod = true
			}
		case 3:
			r.name = segs[1]
			if !strings.EqualFold(segs[2], "recover") {
				return route{}
			}
			want(http.MethodPost, opRecover)
		default:
			return route{}
		}
	default:
		return route{}
	}
	if r.name != "" && !secretName.MatchString(r.name) {
		r.badName = true
	}
	return r
}
