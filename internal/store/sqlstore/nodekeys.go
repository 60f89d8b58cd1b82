package sqlstore

import (
	"context"
	"fmt"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

var _ store.NodeKeys = (*Store)(nil)

// ListNodeKeys implements store.NodeKeys.
func (s *Store) ListNodeKeys(ctx context.Context) ([]store.NodeKey, error) {
	var out []store.NodeKey
	err := s.read(func(r runner) error {
		rows, err := r.query(ctx, `SELECT name, sealed, created FROM node_keys ORDER BY name`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k store.NodeKey
			if err := rows.Scan(&k.Name, &k.Sealed, timeCol{&k.Created}); err != nil {
				return err
			}
			out = append(out, k)
		}
		return rows.Err()
	})
	return out, s.fail("list node keys", err)
}

// ClaimNodeKey implements store.NodeKeys: one statement inserts the key
// unless its name is taken, and the key stored under the name is read
// afterwards, so that of racing nodes the first insert wins and every
// node reads that one.
func (s *Store) ClaimNodeKey(ctx context.Context, k store.NodeKey) (store.NodeKey, error) {
	const op = "claim node key"
	if err := required(op, [2]string{"name", k.Name}); err != nil {
		return store.NodeKey{}, err
	}
	if err := checkText(op, k.Name); err != nil {
		return store.NodeKey{}, err
	}
	if len(k.Sealed) == 0 {
		return store.NodeKey{}, fmt.Errorf("sqlstore: %s: no content", op)
	}
	err := s.appendLog(ctx, false, func(r runner) error {
		_, err := r.exec(ctx, `INSERT INTO node_keys (name, sealed, created) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING`,
			k.Name, k.Sealed, s.bindTime(k.Created, now()))
		return err
	})
	if err != nil {
		return store.NodeKey{}, s.fail(op, err)
	}
	var got store.NodeKey
	err = s.read(func(r runner) error {
		return r.queryRow(ctx, `SELECT name, sealed, created FROM node_keys WHERE name = ?`, k.Name).
			Scan(&got.Name, &got.Sealed, timeCol{&got.Created})
	})
	return got, s.fail(op, err)
}

// DeleteNodeKey implements store.NodeKeys.
func (s *Store) DeleteNodeKey(ctx context.Context, name string) error {
	err := s.appendLog(ctx, false, func(r runner) error {
		_, err := r.exec(ctx, `DELETE FROM node_keys WHERE name = ?`, name)
		return err
	})
	return s.fail("delete node key", err)
}
