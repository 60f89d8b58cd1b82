package sqlstore

import (
	"context"
	"fmt"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

const linkCols = `tenant_id, kind, from_id, to_id, to_kind, created`

func scanLink(sc interface{ Scan(...any) error }) (store.Link, error) {
	var (
		l            store.Link
		kind, toKind string
	)
	err := sc.Scan(&l.TenantID, &kind, &l.From, &l.To, &toKind, timeCol{&l.Created})
	l.Kind, l.ToKind = store.LinkKind(kind), store.ObjectKind(toKind)
	return l, err
}

// AddLink implements store.Links. Both ends must be objects of the tenant:
// a missing one is ErrNotFound. A zero Created is set to now.
func (s *Store) AddLink(ctx context.Context, l store.Link) error {
	const op = "add link"
	if err := required(op, [2]string{"tenant id", l.TenantID}, [2]string{"kind", string(l.Kind)},
		[2]string{"from", l.From}, [2]string{"to", l.To}); err != nil {
		return err
	}
	if err := checkText(op, l.TenantID, string(l.Kind), l.From, l.To, string(l.ToKind)); err != nil {
		return err
	}
	err := s.writeParts(ctx, false, func(r runner, ch *changes) error {
		ch.tenant(l.TenantID)
		_, err := r.exec(ctx, `INSERT INTO links (`+linkCols+`) VALUES (?, ?, ?, ?, ?, ?)`,
			l.TenantID, string(l.Kind), l.From, l.To, string(l.ToKind), s.bindTime(l.Created, now()))
		return err
	})
	return s.fail(fmt.Sprintf("%s %s %s->%s", op, l.Kind, l.From, l.To), err)
}

// RemoveLink implements store.Links.
func (s *Store) RemoveLink(ctx context.Context, tenantID string, kind store.LinkKind, from, to string) error {
	if !textOK(tenantID, string(kind), from, to) {
		return notFound("remove link")
	}
	err := s.writeParts(ctx, false, func(r runner, ch *changes) error {
		ch.tenant(tenantID)
		res, err := r.exec(ctx, `DELETE FROM links WHERE tenant_id = ? AND kind = ? AND from_id = ? AND to_id = ?`,
			tenantID, string(kind), from, to)
		if err != nil {
			return err
		}
		return mustAffect(res)
	})
	return s.fail(fmt.Sprintf("remove link %s %s->%s", kind, from, to), err)
}

// ListLinksFrom implements store.Links.
func (s *Store) ListLinksFrom(ctx context.Context, tenantID string, kind store.LinkKind, from string) ([]store.Link, error) {
	ls, err := s.listLinks(ctx, `SELECT `+linkCols+` FROM links WHERE tenant_id = ? AND from_id = ? AND kind = ? ORDER BY to_id`,
		tenantID, from, string(kind))
	return ls, s.fail("list links from "+from, err)
}

// ListLinksTo implements store.Links.
func (s *Store) ListLinksTo(ctx context.Context, tenantID string, kind store.LinkKind, to string) ([]store.Link, error) {
	ls, err := s.listLinks(ctx, `SELECT `+linkCols+` FROM links WHERE tenant_id = ? AND to_id = ? AND kind = ? ORDER BY from_id`,
		tenantID, to, string(kind))
	return ls, s.fail("list links to "+to, err)
}

func (s *Store) listLinks(ctx context.Context, query string, args ...string) ([]store.Link, error) {
	var ls []store.Link
	if !textOK(args...) {
		return nil, nil
	}
	err := s.read(func(r runner) error {
		rows, err := r.query(ctx, query, anys(args)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			l, err := scanLink(rows)
			if err != nil {
				return err
			}
			ls = append(ls, l)
		}
		return rows.Err()
	})
	return ls, err
}
