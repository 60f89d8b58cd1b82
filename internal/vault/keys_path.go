package vault

import (
	"net/http"
	"strings"
)

// cryptoOps maps the last segment of POST /keys/{name}/{version}/{op}
// to its operation (Key Vault REST: Keys - Sign, Verify, Encrypt, Decrypt,
// Wrap Key, Unwrap Key).
var cryptoOps = map[string]op{
	"sign": opSign, "verify": opVerify, "encrypt": opEncrypt, "decrypt": opDecrypt,
	"wrapkey": opWrap, "unwrapkey": opUnwrap,
}

// isKeyPath reports whether path is one of the keys data plane's.
func isKeyPath(path string) bool {
	first, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	return strings.EqualFold(first, "keys") || strings.EqualFold(first, "deletedkeys")
}

// parseKeyPath maps a method and path to a keys operation. It never fails
// with anything but opNone (unknown path) or a flag, whatever the input.
// An empty or missing version means the latest: azkeys builds
// /keys/{name}/{version}/sign with the version it is given, "" included,
// which azcore sends as /keys/{name}/sign, and /keys/{name}/ for
// GetKey(name, ""). (So, unlike parsePath, it takes empty segments.)
func parseKeyPath(method, path string) route {
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(segs) == 0 || len(segs) > 4 {
		return route{}
	}
	if strings.EqualFold(segs[0], "deletedkeys") {
		if len(segs) > 1 && segs[len(segs)-1] == "" {
			segs = segs[:len(segs)-1]
		}
		return checkKeyName(parseDeleted(method, segs))
	}
	if !strings.EqualFold(segs[0], "keys") {
		return route{}
	}
	var r route
	switch len(segs) {
	case 1:
		r.want(method, http.MethodGet, opList)
		return r
	case 2:
		if segs[1] == "" {
			r.want(method, http.MethodGet, opList)
			return r
		}
		if strings.EqualFold(segs[1], "restore") && method == http.MethodPost {
			r.op = opRestore
			return r
		}
		r.name = segs[1]
		r.onName(method, opImport)
	case 3:
		r.name = segs[1]
		switch last := strings.ToLower(segs[2]); last {
		case "create":
			r.want(method, http.MethodPost, opCreate)
		case "backup":
			r.want(method, http.MethodPost, opBackup)
		case "rotate":
			r.want(method, http.MethodPost, opRotate)
		case "versions":
			r.want(method, http.MethodGet, opVersions)
		default:
			// POST /keys/{name}/sign: azcore's JoinPaths folds the empty
			// version of /keys/{name}/{version}/sign, so this is "latest".
			if op, ok := cryptoOps[last]; ok && method == http.MethodPost {
				r.op = op
				break
			}
			r.version = segs[2]
			r.onName(method, opNone)
		}
	case 4:
		r.name, r.version = segs[1], segs[2]
		op, ok := cryptoOps[strings.ToLower(segs[3])]
		if !ok {
			return route{}
		}
		r.want(method, http.MethodPost, op)
	}
	return checkKeyName(r)
}

// checkKeyName flags an invalid key name, and an empty one where the
// operation needs a name (the keys path takes empty segments).
func checkKeyName(r route) route {
	if r.name != "" && !secretName.MatchString(r.name) || r.name == "" && r.op != opList && r.op != opListDeleted && r.op != opRestore && r.op != opNone {
		r.badName = true
	}
	return r
}
