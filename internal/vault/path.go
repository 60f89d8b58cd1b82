package vault

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

// op is one operation of the secrets or the keys data plane.
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
	// Keys only.
	opCreate
	opImport
	opRotate
	opSign
	opVerify
	opEncrypt
	opDecrypt
	opWrap
	opUnwrap
)

// route is a parsed request path.
type route struct {
	op      op
	name    string // secret or key name as given ("" for list and restore)
	version string // "" = latest
	// badName is set when the path names a secret or key with an invalid
	// name.
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
	switch {
	case strings.EqualFold(segs[0], "secrets"):
		switch len(segs) {
		case 1:
			r.want(method, http.MethodGet, opList)
		case 2:
			if strings.EqualFold(segs[1], "restore") && method == http.MethodPost {
				r.op = opRestore
				return r
			}
			r.name = segs[1]
			r.onName(method, opSet)
		case 3:
			r.name = segs[1]
			switch {
			case strings.EqualFold(segs[2], "versions"):
				r.want(method, http.MethodGet, opVersions)
			case strings.EqualFold(segs[2], "backup"):
				r.want(method, http.MethodPost, opBackup)
			default:
				r.version = segs[2]
				r.onName(method, opNone)
			}
		default:
			return route{}
		}
	case strings.EqualFold(segs[0], "deletedsecrets"):
		r = parseDeleted(method, segs)
	default:
		return route{}
	}
	if r.name != "" && !secretName.MatchString(r.name) {
		r.badName = true
	}
	return r
}

// parseDeleted parses the path of deleted secrets or keys, its first
// segment (deletedsecrets, deletedkeys) checked: the list, one deleted
// name (get, purge) and its recover.
func parseDeleted(method string, segs []string) route {
	var r route
	switch len(segs) {
	case 1:
		r.want(method, http.MethodGet, opListDeleted)
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
		r.want(method, http.MethodPost, opRecover)
	default:
		return route{}
	}
	return r
}

// want sets the operation o when method is m, else flags a bad method.
func (r *route) want(method, m string, o op) {
	if method == m {
		r.op = o
	} else {
		r.badMethod = true
	}
}

// onName sets the operation of method on one secret or key: at /{name}
// get, update, put (set or import) and delete; at /{name}/{version}, put
// opNone, get and update only.
func (r *route) onName(method string, put op) {
	switch {
	case method == http.MethodGet:
		r.op = opGet
	case method == http.MethodPatch:
		r.op = opUpdate
	case put != opNone && method == http.MethodPut:
		r.op = put
	case put != opNone && method == http.MethodDelete:
		r.op = opDelete
	default:
		r.badMethod = true
	}
}

// routeError answers a request whose path names no operation (404), one
// the method does not fit (405) or an invalid name (400); it reports
// whether it answered.
func routeError(w http.ResponseWriter, r *http.Request, rt route) bool {
	switch {
	case rt.badMethod:
		writeError(w, http.StatusMethodNotAllowed, "BadParameter", fmt.Sprintf("The method %s is not allowed on %s.", r.Method, r.URL.Path), "")
	case rt.op == opNone:
		writeError(w, http.StatusNotFound, "NotFound", "The requested resource was not found.", "")
	case rt.badName:
		writeError(w, http.StatusBadRequest, "BadParameter", "The request URI contains an invalid name: "+rt.name, "")
	default:
		return false
	}
	return true
}
