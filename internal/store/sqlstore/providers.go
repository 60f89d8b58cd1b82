package sqlstore

import (
	"context"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

const registrationCols = `tenant_id, subscription_id, namespace, state, updated`

func scanRegistration(sc interface{ Scan(...any) error }) (store.ProviderRegistration, error) {
	var r store.ProviderRegistration
	err := sc.Scan(&r.TenantID, &r.SubscriptionID, &r.Namespace, &r.State, timeCol{&r.Updated})
	return r, err
}

// PutProviderRegistration implements store.ProviderRegistrations: one
// upsert statement, so that concurrent registrations never fail on the
// primary key.
func (s *Store) PutProviderRegistration(ctx context.Context, reg store.ProviderRegistration) error {
	const op = "put provider registration"
	if err := required(op, [2]string{"tenant id", reg.TenantID}, [2]string{"subscription id", reg.SubscriptionID},
		[2]string{"namespace", reg.Namespace}, [2]string{"state", reg.State}); err != nil {
		return err
	}
	if err := checkText(op, reg.TenantID, reg.SubscriptionID, reg.Namespace, reg.State); err != nil {
		return err
	}
	err := s.appendLog(ctx, false, func(r runner) error {
		_, err := r.exec(ctx, `INSERT INTO provider_registrations (sub_key, ns_key, `+registrationCols+`)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (sub_key, ns_key) DO UPDATE SET state = excluded.state, updated = excluded.updated`,
			fold(reg.SubscriptionID), fold(reg.Namespace), reg.TenantID, reg.SubscriptionID, reg.Namespace, reg.State, s.bindTime(reg.Updated, now()))
		return err
	})
	return s.fail(op+" "+reg.Namespace, err)
}

// GetProviderRegistration implements store.ProviderRegistrations.
func (s *Store) GetProviderRegistration(ctx context.Context, subscriptionID, namespace string) (store.ProviderRegistration, error) {
	const op = "get provider registration"
	var reg store.ProviderRegistration
	if !textOK(subscriptionID, namespace) {
		return reg, notFound(op)
	}
	err := s.read(func(r runner) error {
		var err error
		reg, err = scanRegistration(r.queryRow(ctx, `SELECT `+registrationCols+` FROM provider_registrations WHERE sub_key = ? AND ns_key = ?`,
			fold(subscriptionID), fold(namespace)))
		return err
	})
	return reg, s.fail(op+" "+namespace, err)
}

// ListProviderRegistrations implements store.ProviderRegistrations.
func (s *Store) ListProviderRegistrations(ctx context.Context, subscriptionID string) ([]store.ProviderRegistration, error) {
	const op = "list provider registrations"
	if err := required(op, [2]string{"subscription id", subscriptionID}); err != nil {
		return nil, err
	}
	if !textOK(subscriptionID) {
		return nil, nil
	}
	var out []store.ProviderRegistration
	err := s.read(func(r runner) error {
		rows, err := r.query(ctx, `SELECT `+registrationCols+` FROM provider_registrations WHERE sub_key = ? ORDER BY ns_key`, fold(subscriptionID))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			reg, err := scanRegistration(rows)
			if err != nil {
				return err
			}
			out = append(out, reg)
		}
		return rows.Err()
	})
	return out, s.fail(op, err)
}
