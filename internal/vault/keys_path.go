package vault

import (
	"net/http"
	"strings"
)

// keyOp is one operation of the keys data plane.
type keyOp int

const (
	kopNone keyOp = iota
	kopCreate
	kopImport
	kopGet
	kopList
	kopVersions
	kopUpdate
	kopDelete
	kopListDeleted
	kopGetDeleted
	kopRecover
	kopPurge
	kopBackup
	kopRestore
	kopRotate
	kopSign
	kopVerify
	kopEncrypt
	kopDecrypt
	kopWrap
	kopUnwrap
)

// keyRoute is a parsed request path under /keys or /deletedkeys.
type keyRoute struct {
	op      keyOp
	name    string // key name as given ("" for list and restore)
	version string // "" = latest
	// badName is set when the path names a key with an invalid name;
	// badMethod when the path is known but the method is not.
	badName, badMethod bool
}

// cryptoOps maps the last segment of POST /keys/{name}/{version}/{op}
// to its operation (Key Vault REST: Keys - Sign, Verify, Encrypt, Decrypt,
// Wrap Key, Unwrap Key).
var cryptoOps = map[string]keyOp{
	"sign": kopSign, "verify": kopVerify, "encrypt": kopEncrypt, "decrypt": kopDecrypt,
	"wrapkey": kopWrap, "unwrapkey": kopUnwrap,
}

// isKeyPath reports whether path is one of the keys data plane's.
func isKeyPath(path string) bool {
	first, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	return strings.EqualFold(first, "keys") || strings.EqualFold(first, "deletedkeys")
}

// parseKeyPath maps a method and path to a keys operation. It never fails
// with anything but kopNone (unknown path) or a flag, whatever the input.
// An empty or missing version means the latest: azkeys builds
// /keys/{name}/{version}/sign with the version it is given, "" included,
// which azcore sends as /keys/{name}/sign, and /keys/{name}/ for
// GetKey(name, "").
func parseKeyPath(method, path string) keyRoute {
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(segs) == 0 || len(segs) > 4 {
		return keyRoute{}
	}
	var r keyRoute
	want := func(m string, o keyOp) {
		if method == m {
			r.op = o
		} else {
			r.badMethod = true
		}
	}
	if strings.EqualFold(segs[0], "deletedkeys") {
		if len(segs) > 1 && segs[len(segs)-1] == "" {
			segs = segs[:len(segs)-1]
		}
		switch len(segs) {
		case 1:
			want(http.MethodGet, kopListDeleted)
		case 2:
			r.name = segs[1]
			switch method {
			case http.MethodGet:
				r.op = kopGetDeleted
			case http.MethodDelete:
				r.op = kopPurge
			default:
				r.badMethod = true
			}
		case 3:
			r.name = segs[1]
			if !strings.EqualFold(segs[2], "recover") {
				return keyRoute{}
			}
			want(http.MethodPost, kopRecover)
		default:
			return keyRoute{}
		}
		return r.checkName()
	}
	if !strings.EqualFold(segs[0], "keys") {
		return keyRoute{}
	}
	switch len(segs) {
	case 1:
		want(http.MethodGet, kopList)
		return r
	case 2:
		if segs[1] == "" {
			want(http.MethodGet, kopList)
			return r
		}
		if strings.EqualFold(segs[1], "restore") && method == http.MethodPost {
			r.op = kopRestore
			return r
		}
		r.name = segs[1]
		switch method {
		case http.MethodPut:
			r.op = kopImport
		case http.MethodGet:
			r.op = kopGet
		case http.MethodPatch:
			r.op = kopUpdate
		case http.MethodDelete:
			r.op = kopDelete
		default:
			r.badMethod = true
		}
	case 3:
		r.name = segs[1]
		switch last := strings.ToLower(segs[2]); last {
		case "create":
			want(http.MethodPost, kopCreate)
		case "backup":
			want(http.MethodPost, kopBackup)
		case "rotate":
			want(http.MethodPost, kopRotate)
		case "versions":
			want(http.MethodGet, kopVersions)
		default:
			// POST /keys/{name}/sign: azcore's JoinPaths folds the empty
			// version of /keys/{name}/{version}/sign, so this is "latest".
			if op, ok := cryptoOps[last]; ok && method == http.MethodPost {
				r.op = op
				break
			}
			r.version = segs[2]
			switch method {
			case http.MethodGet:
				r.op = kopGet
			case http.MethodPatch:
				r.op = kopUpdate
			default:
				r.badMethod = true
			}
		}
	case 4:
		r.name, r.version = segs[1], segs[2]
		op, ok := cryptoOps[strings.ToLower(segs[3])]
		if !ok {
			return keyRoute{}
		}
		want(http.MethodPost, op)
	}
	return r.checkName()
}

func (r keyRoute) checkName() keyRoute {
	if r.name != "" && !secretName.MatchString(r.name) || r.name == "" && r.op != kopList && r.op != kopListDeleted && r.op != kopRestore && r.op != kopNone {
		r.badName = true
	}
	return r
}
