package sqlstore

import (
	"context"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// ResourcesNamed implements store.ARM. A resource's id ends with
// "/{name}", so the last length(name) characters of the lower-cased id
// are the lower-cased name (substr and length count characters on both
// backends, and lower-casing keeps their number); an index on that
// expression per type (migration 0022) finds them without reading every
// resource of every subscription, which a fleet of thousands of
// namespaces made the cost of each new AMQP connection.
func (s *Store) ResourcesNamed(ctx context.Context, typ, name string) ([]store.Resource, error) {
	const op = "resources named"
	if !textOK(typ, name) || typ == "" || name == "" || strings.Contains(name, "/") {
		return nil, nil
	}
	var out []store.Resource
	err := s.read(func(r runner) error {
		rows, err := r.query(ctx, `SELECT `+resourceCols+` FROM arm_resources WHERE `+resourcesNamedWhere+` ORDER BY id_key`,
			fold(typ), fold(name))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			res, err := scanResource(rows)
			if err != nil {
				return err
			}
			// The id's last segment is the name, as the old suffix match
			// of id_key required.
			if strings.EqualFold(res.Name, name) && strings.HasSuffix(fold(res.ID), "/"+fold(name)) {
				out = append(out, res)
			}
		}
		return rows.Err()
	})
	return out, s.fail(op, err)
}

// resourcesNamedWhere is ResourcesNamed's condition: the type, and the
// expression of the index arm_resources_named (migration 0022), written
// as there so that both backends use the index.
const resourcesNamedWhere = `type_key = ? AND substr(id_key, length(id_key) - length(name) + 1) = ?`
