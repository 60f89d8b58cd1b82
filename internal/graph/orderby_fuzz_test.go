package graph

import (
	"errors"
	"net/url"
	"testing"
	"unicode/utf8"

	"github.com/google/uuid"
)

// FuzzOrderBy: $orderby and a sorted list's $skiptoken never panic, are
// refused with a 400 in Graph's terms or sort by a property the collection
// sorts on, and a token the server writes reads back as the same cursor.
func FuzzOrderBy(f *testing.F) {
	for _, s := range []string{"displayName", "displayName desc", "DISPLAYNAME Asc", "userPrincipalName", "a,b", " ", "displayName  desc  x"} {
		f.Add(s, encodeSortedToken("8e2c1f4d-0000-4000-8000-00000000000a", "name"), "8e2c1f4d-0000-4000-8000-00000000000a", "name")
	}
	f.Fuzz(func(t *testing.T, order, token, id, key string) {
		q := url.Values{"$orderby": {order}, "$skiptoken": {token}}.Encode()
		for _, spec := range []querySpec{applicationListQuery, userListQuery, groupListQuery} {
			opts, err := parseQuery(q, spec)
			if err != nil {
				var ge *graphError
				if !errors.As(err, &ge) || ge.status != 400 {
					t.Fatalf("parseQuery(%q): %v is not a 400", q, err)
				}
				continue
			}
			if _, ok := spec.orderable[opts.orderBy]; !ok || (token != "" && opts.after == "") {
				t.Fatalf("parseQuery(%q): sorted by %q with cursor %q", q, opts.orderBy, opts.after)
			}
		}
		// The server writes tokens of object ids: canonical GUIDs.
		if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
			return
		}
		if gotID, gotKey, ok := decodeSortedToken(encodeSortedToken(id, key)); utf8.ValidString(key) && (!ok || gotID != id || gotKey != key) {
			t.Fatalf("token of %q %q reads back as %q %q", id, key, gotID, gotKey)
		}
	})
}
