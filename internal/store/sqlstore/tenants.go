package sqlstore

import (
	"context"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

const tenantCols = `id, name, domain, subscription_id, created`

func scanTenant(sc interface{ Scan(...any) error }) (store.Tenant, error) {
	var t store.Tenant
	err := sc.Scan(&t.ID, &t.Name, &t.Domain, &t.SubscriptionID, timeCol{&t.Created})
	return t, err
}

// CreateTenant implements store.Tenants. Names and domains are unique
// case-insensitively (both are DNS labels). A zero Created is set to now.
func (s *Store) CreateTenant(ctx context.Context, t store.Tenant) error {
	const op = "create tenant"
	if err := required(op, [2]string{"id", t.ID}, [2]string{"name", t.Name}, [2]string{"domain", t.Domain}); err != nil {
		return err
	}
	if err := checkText(op, t.ID, t.Name, t.Domain, t.SubscriptionID); err != nil {
		return err
	}
	err := s.writeParts(ctx, false, func(r runner, ch *changes) error {
		ch.tenant(t.ID)
		ch.subscription(t.SubscriptionID)
		ch.tenantRef(t.ID)
		ch.tenantRef(t.Domain)
		_, err := r.exec(ctx, `INSERT INTO tenants (id, name, name_key, domain, domain_key, subscription_id, created)
VALUES (?, ?, ?, ?, ?, ?, ?)`,
			t.ID, t.Name, fold(t.Name), t.Domain, fold(t.Domain), t.SubscriptionID, s.bindTime(t.Created, now()))
		return err
	})
	return s.fail(op, err)
}

// GetTenant implements store.Tenants. Should an id ever equal another
// tenant's domain, the id wins.
func (s *Store) GetTenant(ctx context.Context, idOrDomain string) (store.Tenant, error) {
	var t store.Tenant
	if !textOK(idOrDomain) {
		return t, notFound("get tenant")
	}
	err := s.read(func(r runner) error {
		var err error
		t, err = scanTenant(r.queryRow(ctx, `SELECT `+tenantCols+` FROM tenants
WHERE id = ? OR domain_key = ?
ORDER BY CASE WHEN id = ? THEN 0 ELSE 1 END
LIMIT 1`, idOrDomain, fold(idOrDomain), idOrDomain))
		return err
	})
	return t, s.fail("get tenant", err)
}

// ListTenants implements store.Tenants, ordering by the case-folded name.
func (s *Store) ListTenants(ctx context.Context) ([]store.Tenant, error) {
	var ts []store.Tenant
	err := s.read(func(r runner) error {
		rows, err := r.query(ctx, `SELECT `+tenantCols+` FROM tenants ORDER BY name_key, id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			t, err := scanTenant(rows)
			if err != nil {
				return err
			}
			ts = append(ts, t)
		}
		return rows.Err()
	})
	return ts, s.fail("list tenants", err)
}

// DeleteTenant implements store.Tenants. Foreign keys with ON DELETE
// CASCADE remove everything under the tenant in the same statement; the
// audit table has no such key, so its records survive as evidence.
func (s *Store) DeleteTenant(ctx context.Context, id string) error {
	if !textOK(id) {
		return notFound("delete tenant")
	}
	err := s.write(ctx, false, func(r runner) error {
		res, err := r.exec(ctx, `DELETE FROM tenants WHERE id = ?`, id)
		if err != nil {
			return err
		}
		return mustAffect(res)
	})
	return s.fail("delete tenant", err)
}
