package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

const deploymentCols = `tenant_id, subscription_id, resource_group, name, state, document, created, updated`

func scanDeployment(sc interface{ Scan(...any) error }) (store.Deployment, error) {
	var (
		d   store.Deployment
		doc string
	)
	if err := sc.Scan(&d.TenantID, &d.SubscriptionID, &d.ResourceGroup, &d.Name, &d.State, &doc, timeCol{&d.Created}, timeCol{&d.Updated}); err != nil {
		return d, err
	}
	d.Document = []byte(doc)
	return d, nil
}

// nullableGroup is the rg_key of a scope: NULL at subscription scope, so
// that the foreign key to resource_groups is not checked there.
func nullableGroup(rg string) any {
	if rg == "" {
		return nil
	}
	return fold(rg)
}

// PutDeployment implements store.Deployments: one upsert statement, so
// concurrent writers of one deployment never fail on the primary key.
func (s *Store) PutDeployment(ctx context.Context, d store.Deployment) error {
	const op = "put deployment"
	if err := required(op, [2]string{"tenant id", d.TenantID}, [2]string{"subscription id", d.SubscriptionID}, [2]string{"name", d.Name}, [2]string{"state", d.State}); err != nil {
		return err
	}
	if !json.Valid(d.Document) {
		return fmt.Errorf("sqlstore: %s: the document is not JSON", op)
	}
	doc := string(d.Document)
	if err := checkText(op, d.TenantID, d.SubscriptionID, d.ResourceGroup, d.Name, d.State, doc); err != nil {
		return err
	}
	created, updated := s.bindTime(d.Created, now()), s.bindTime(d.Updated, now())
	err := s.appendLog(ctx, false, func(r runner) error {
		_, err := r.exec(ctx, `INSERT INTO arm_deployments (sub_key, grp_key, name_key, rg_key, `+deploymentCols+`)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (sub_key, grp_key, name_key) DO UPDATE SET state = excluded.state, document = excluded.document, updated = excluded.updated`,
			fold(d.SubscriptionID), fold(d.ResourceGroup), fold(d.Name), nullableGroup(d.ResourceGroup),
			d.TenantID, d.SubscriptionID, d.ResourceGroup, d.Name, d.State, doc, created, updated)
		return err
	})
	return s.fail(op+" "+d.Name, err)
}

// GetDeployment implements store.Deployments.
func (s *Store) GetDeployment(ctx context.Context, subscriptionID, resourceGroup, name string) (store.Deployment, error) {
	const op = "get deployment"
	var d store.Deployment
	if !textOK(subscriptionID, resourceGroup, name) {
		return d, notFound(op)
	}
	err := s.read(func(r runner) error {
		var err error
		d, err = scanDeployment(r.queryRow(ctx, `SELECT `+deploymentCols+` FROM arm_deployments WHERE sub_key = ? AND grp_key = ? AND name_key = ?`,
			fold(subscriptionID), fold(resourceGroup), fold(name)))
		return err
	})
	return d, s.fail(op+" "+name, err)
}

// listDeployments runs a query of whole deployments.
func (s *Store) listDeployments(ctx context.Context, op, query string, args ...any) ([]store.Deployment, error) {
	var out []store.Deployment
	err := s.read(func(r runner) error {
		rows, err := r.query(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			d, err := scanDeployment(rows)
			if err != nil {
				return err
			}
			out = append(out, d)
		}
		return rows.Err()
	})
	return out, s.fail(op, err)
}

// ListDeployments implements store.Deployments.
func (s *Store) ListDeployments(ctx context.Context, subscriptionID, resourceGroup string) ([]store.Deployment, error) {
	const op = "list deployments"
	if err := required(op, [2]string{"subscription id", subscriptionID}); err != nil {
		return nil, err
	}
	if !textOK(subscriptionID, resourceGroup) {
		return nil, nil
	}
	return s.listDeployments(ctx, op, `SELECT `+deploymentCols+` FROM arm_deployments WHERE sub_key = ? AND grp_key = ? ORDER BY name_key`,
		fold(subscriptionID), fold(resourceGroup))
}

// DeleteDeployment implements store.Deployments.
func (s *Store) DeleteDeployment(ctx context.Context, subscriptionID, resourceGroup, name string) error {
	const op = "delete deployment"
	if !textOK(subscriptionID, resourceGroup, name) {
		return notFound(op)
	}
	err := s.appendLog(ctx, false, func(r runner) error {
		rs, err := r.exec(ctx, `DELETE FROM arm_deployments WHERE sub_key = ? AND grp_key = ? AND name_key = ?`,
			fold(subscriptionID), fold(resourceGroup), fold(name))
		if err != nil {
			return err
		}
		return mustAffect(rs)
	})
	return s.fail(op+" "+name, err)
}

// UnfinishedDeployments implements store.Deployments.
func (s *Store) UnfinishedDeployments(ctx context.Context) ([]store.Deployment, error) {
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(store.DeploymentUnfinished)), ", ")
	return s.listDeployments(ctx, "unfinished deployments", `SELECT `+deploymentCols+` FROM arm_deployments WHERE state IN (`+marks+`) ORDER BY updated`,
		anys(store.DeploymentUnfinished)...)
}
