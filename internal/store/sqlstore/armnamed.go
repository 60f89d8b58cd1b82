package sqlstore

import (
	"context"
	"strings"
	"unicode/utf8"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// ResourcesNamed implements store.ARM. A resource's id ends with
// "/{name}", so the lower-cased id's suffix finds it on both backends
// (substr and length count characters on both). The query scans the
// resources of every subscription; its callers cache what it returns per
// store generation, so it runs once per name after each change.
func (s *Store) ResourcesNamed(ctx context.Context, typ, name string) ([]store.Resource, error) {
	const op = "resources named"
	if !textOK(typ, name) || typ == "" || name == "" || strings.Contains(name, "/") {
		return nil, nil
	}
	suffix := "/" + fold(name)
	var out []store.Resource
	err := s.read(func(r runner) error {
		rows, err := r.query(ctx, `SELECT `+resourceCols+` FROM arm_resources
WHERE type_key = ? AND substr(id_key, length(id_key) - ? + 1) = ? ORDER BY id_key`,
			fold(typ), utf8.RuneCountInString(suffix), suffix)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			res, err := scanResource(rows)
			if err != nil {
				return err
			}
			if strings.EqualFold(res.Name, name) {
				out = append(out, res)
			}
		}
		return rows.Err()
	})
	return out, s.fail(op, err)
}
