package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

const resourceGroupCols = `tenant_id, subscription_id, name, location, tags, created, updated`

func encodeARMTags(tags map[string]string) (string, error) {
	if len(tags) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(tags)
	return string(b), err
}

func decodeARMTags(s string) (map[string]string, error) {
	if s == "" || s == "{}" || s == "null" {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("bad tags: %w", err)
	}
	return m, nil
}

func scanResourceGroup(sc interface{ Scan(...any) error }) (store.ResourceGroup, error) {
	var (
		g    store.ResourceGroup
		tags string
	)
	if err := sc.Scan(&g.TenantID, &g.SubscriptionID, &g.Name, &g.Location, &tags, timeCol{&g.Created}, timeCol{&g.Updated}); err != nil {
		return g, err
	}
	var err error
	g.Tags, err = decodeARMTags(tags)
	return g, err
}

// CreateResourceGroup implements store.ARM.
func (s *Store) CreateResourceGroup(ctx context.Context, g store.ResourceGroup) error {
	const op = "create resource group"
	if err := required(op, [2]string{"tenant id", g.TenantID}, [2]string{"subscription id", g.SubscriptionID}, [2]string{"name", g.Name}); err != nil {
		return err
	}
	tags, err := encodeARMTags(g.Tags)
	if err != nil {
		return fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	if err := checkText(op, g.TenantID, g.SubscriptionID, g.Name, g.Location, tags); err != nil {
		return err
	}
	created := s.bindTime(g.Created, now())
	updated := s.bindTime(g.Updated, now())
	err = s.writeParts(ctx, false, func(r runner, ch *changes) error {
		ch.tenant(g.TenantID)
		_, err := r.exec(ctx, `INSERT INTO resource_groups (sub_key, name_key, `+resourceGroupCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			fold(g.SubscriptionID), fold(g.Name), g.TenantID, g.SubscriptionID, g.Name, g.Location, tags, created, updated)
		return err
	})
	return s.fail(op+" "+g.Name, err)
}

// UpdateResourceGroup implements store.ARM.
func (s *Store) UpdateResourceGroup(ctx context.Context, g store.ResourceGroup) error {
	const op = "update resource group"
	tags, err := encodeARMTags(g.Tags)
	if err != nil {
		return fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	if !textOK(g.SubscriptionID, g.Name) {
		return notFound(op)
	}
	if err := checkText(op, g.Location, tags); err != nil {
		return err
	}
	err = s.write(ctx, false, func(r runner) error {
		res, err := r.exec(ctx, `UPDATE resource_groups SET location = ?, tags = ?, updated = ? WHERE sub_key = ? AND name_key = ?`,
			g.Location, tags, s.bindTime(g.Updated, now()), fold(g.SubscriptionID), fold(g.Name))
		if err != nil {
			return err
		}
		return mustAffect(res)
	})
	return s.fail(op+" "+g.Name, err)
}

// GetResourceGroup implements store.ARM.
func (s *Store) GetResourceGroup(ctx context.Context, subscriptionID, name string) (store.ResourceGroup, error) {
	var g store.ResourceGroup
	if !textOK(subscriptionID, name) || name == "" {
		return g, notFound("get resource group")
	}
	err := s.read(func(r runner) error {
		var err error
		g, err = scanResourceGroup(r.queryRow(ctx, `SELECT `+resourceGroupCols+` FROM resource_groups WHERE sub_key = ? AND name_key = ?`,
			fold(subscriptionID), fold(name)))
		return err
	})
	return g, s.fail("get resource group "+name, err)
}

// ListResourceGroups implements store.ARM.
func (s *Store) ListResourceGroups(ctx context.Context, subscriptionID string) ([]store.ResourceGroup, error) {
	if !textOK(subscriptionID) {
		return nil, nil
	}
	var gs []store.ResourceGroup
	err := s.read(func(r runner) error {
		rows, err := r.query(ctx, `SELECT `+resourceGroupCols+` FROM resource_groups WHERE sub_key = ? ORDER BY name_key`, fold(subscriptionID))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			g, err := scanResourceGroup(rows)
			if err != nil {
				return err
			}
			gs = append(gs, g)
		}
		return rows.Err()
	})
	return gs, s.fail("list resource groups", err)
}

// belowScope is the condition "col is key or below it on a segment
// boundary", with its arguments; substr counts characters on both
// backends, so the length is in runes.
func belowScope(col, key string) (string, []any) {
	below := key + "/"
	return `(` + col + ` = ? OR substr(` + col + `, 1, ?) = ?)`, []any{key, utf8.RuneCountInString(below), below}
}

// deleteAssignmentsBelow removes a tenant's role and deny assignments at
// scope key or below it.
func deleteAssignmentsBelow(ctx context.Context, r runner, tenantID, key string) error {
	for _, table := range []string{"role_assignments", "deny_assignments"} {
		cond, args := belowScope("scope_key", key)
		if _, err := r.exec(ctx, `DELETE FROM `+table+` WHERE tenant_id = ? AND `+cond, append([]any{tenantID}, args...)...); err != nil {
			return err
		}
	}
	return nil
}

// DeleteResourceGroup implements store.ARM.
func (s *Store) DeleteResourceGroup(ctx context.Context, subscriptionID, name string) error {
	const op = "delete resource group"
	if !textOK(subscriptionID, name) || name == "" {
		return notFound(op)
	}
	sub, rg := fold(subscriptionID), fold(name)
	err := s.write(ctx, true, func(r runner) error {
		var tenantID string
		if err := r.queryRow(ctx, `SELECT tenant_id FROM resource_groups WHERE sub_key = ? AND name_key = ?`, sub, rg).Scan(&tenantID); err != nil {
			return err
		}
		// Explicitly, as well as by cascade (SQLite needs foreign keys on).
		if _, err := r.exec(ctx, `DELETE FROM arm_resources WHERE sub_key = ? AND rg_key = ?`, sub, rg); err != nil {
			return err
		}
		if err := deleteAssignmentsBelow(ctx, r, tenantID, "/subscriptions/"+sub+"/resourcegroups/"+rg); err != nil {
			return err
		}
		res, err := r.exec(ctx, `DELETE FROM resource_groups WHERE sub_key = ? AND name_key = ?`, sub, rg)
		if err != nil {
			return err
		}
		return mustAffect(res)
	})
	return s.fail(op+" "+name, err)
}

const resourceCols = `tenant_id, id, type, name, location, tags, properties, created, updated`

func scanResource(sc interface{ Scan(...any) error }) (store.Resource, error) {
	var (
		res         store.Resource
		tags, props string
	)
	if err := sc.Scan(&res.TenantID, &res.ID, &res.Type, &res.Name, &res.Location, &tags, &props, timeCol{&res.Created}, timeCol{&res.Updated}); err != nil {
		return res, err
	}
	var err error
	if res.Tags, err = decodeARMTags(tags); err != nil {
		return res, err
	}
	res.Properties = []byte(props)
	res.SubscriptionID, res.ResourceGroup = splitResourceID(res.ID)
	return res, nil
}

// splitResourceID finds the subscription and resource group of an id of
// the form /subscriptions/{s}/resourceGroups/{rg}/…; empty if it is not.
func splitResourceID(id string) (sub, rg string) {
	segs := strings.Split(strings.TrimPrefix(id, "/"), "/")
	if len(segs) >= 4 && strings.EqualFold(segs[0], "subscriptions") && strings.EqualFold(segs[2], "resourceGroups") {
		return segs[1], segs[3]
	}
	return "", ""
}

func properties(p []byte) string {
	if len(p) == 0 {
		return "{}"
	}
	return string(p)
}

// CreateResource implements store.ARM.
func (s *Store) CreateResource(ctx context.Context, res store.Resource) error {
	const op = "create resource"
	if err := required(op, [2]string{"tenant id", res.TenantID}, [2]string{"id", res.ID}, [2]string{"type", res.Type}, [2]string{"name", res.Name}); err != nil {
		return err
	}
	sub, rg := splitResourceID(res.ID)
	if sub == "" || rg == "" {
		return fmt.Errorf("sqlstore: %s: id %q is not under a resource group", op, res.ID)
	}
	if (res.SubscriptionID != "" && !strings.EqualFold(res.SubscriptionID, sub)) || (res.ResourceGroup != "" && !strings.EqualFold(res.ResourceGroup, rg)) {
		return fmt.Errorf("sqlstore: %s: id %q is not in resource group %s of subscription %s", op, res.ID, res.ResourceGroup, res.SubscriptionID)
	}
	tags, err := encodeARMTags(res.Tags)
	if err != nil {
		return fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	props := properties(res.Properties)
	if !json.Valid([]byte(props)) {
		return fmt.Errorf("sqlstore: %s: properties are not JSON", op)
	}
	if err := checkText(op, res.TenantID, res.ID, res.Type, res.Name, res.Location, tags, props); err != nil {
		return err
	}
	created, updated := s.bindTime(res.Created, now()), s.bindTime(res.Updated, now())
	err = s.writeParts(ctx, false, func(r runner, ch *changes) error {
		ch.tenant(res.TenantID)
		_, err := r.exec(ctx, `INSERT INTO arm_resources (id_key, sub_key, rg_key, type_key, `+resourceCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			fold(res.ID), fold(sub), fold(rg), fold(res.Type), res.TenantID, res.ID, res.Type, res.Name, res.Location, tags, props, created, updated)
		return err
	})
	return s.fail(op+" "+res.ID, err)
}

// UpdateResource implements store.ARM.
func (s *Store) UpdateResource(ctx context.Context, res store.Resource) error {
	const op = "update resource"
	tags, err := encodeARMTags(res.Tags)
	if err != nil {
		return fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	props := properties(res.Properties)
	if !json.Valid([]byte(props)) {
		return fmt.Errorf("sqlstore: %s: properties are not JSON", op)
	}
	if !textOK(res.ID) || res.ID == "" {
		return notFound(op)
	}
	if err := checkText(op, res.Location, tags, props); err != nil {
		return err
	}
	err = s.write(ctx, false, func(r runner) error {
		rs, err := r.exec(ctx, `UPDATE arm_resources SET location = ?, tags = ?, properties = ?, updated = ? WHERE id_key = ?`,
			res.Location, tags, props, s.bindTime(res.Updated, now()), fold(res.ID))
		if err != nil {
			return err
		}
		return mustAffect(rs)
	})
	return s.fail(op+" "+res.ID, err)
}

// GetResource implements store.ARM.
func (s *Store) GetResource(ctx context.Context, id string) (store.Resource, error) {
	var res store.Resource
	if !textOK(id) || id == "" {
		return res, notFound("get resource")
	}
	err := s.read(func(r runner) error {
		var err error
		res, err = scanResource(r.queryRow(ctx, `SELECT `+resourceCols+` FROM arm_resources WHERE id_key = ?`, fold(id)))
		return err
	})
	return res, s.fail("get resource "+id, err)
}

// ListResources implements store.ARM.
func (s *Store) ListResources(ctx context.Context, q store.ResourceQuery) ([]store.Resource, error) {
	const op = "list resources"
	if err := required(op, [2]string{"subscription id", q.SubscriptionID}); err != nil {
		return nil, err
	}
	if !textOK(q.SubscriptionID, q.ResourceGroup, q.Type, q.IDPrefix) {
		return nil, nil
	}
	var w strings.Builder
	args := []any{fold(q.SubscriptionID)}
	w.WriteString(`SELECT ` + resourceCols + ` FROM arm_resources WHERE sub_key = ?`)
	if q.ResourceGroup != "" {
		w.WriteString(` AND rg_key = ?`)
		args = append(args, fold(q.ResourceGroup))
	}
	if q.Type != "" {
		w.WriteString(` AND type_key = ?`)
		args = append(args, fold(q.Type))
	}
	if q.IDPrefix != "" {
		cond, more := belowScope("id_key", strings.TrimSuffix(fold(q.IDPrefix), "/"))
		w.WriteString(` AND ` + cond)
		args = append(args, more...)
	}
	w.WriteString(` ORDER BY id_key`)
	var out []store.Resource
	err := s.read(func(r runner) error {
		rows, err := r.query(ctx, w.String(), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			res, err := scanResource(rows)
			if err != nil {
				return err
			}
			out = append(out, res)
		}
		return rows.Err()
	})
	return out, s.fail(op, err)
}

// DeleteResource implements store.ARM.
func (s *Store) DeleteResource(ctx context.Context, id string) error {
	const op = "delete resource"
	if !textOK(id) || id == "" {
		return notFound(op)
	}
	key := strings.TrimSuffix(fold(id), "/")
	err := s.write(ctx, true, func(r runner) error {
		var tenantID string
		if err := r.queryRow(ctx, `SELECT tenant_id FROM arm_resources WHERE id_key = ?`, key).Scan(&tenantID); err != nil {
			return err
		}
		cond, args := belowScope("id_key", key)
		if _, err := r.exec(ctx, `DELETE FROM arm_resources WHERE `+cond, args...); err != nil {
			return err
		}
		return deleteAssignmentsBelow(ctx, r, tenantID, key)
	})
	return s.fail(op+" "+id, err)
}
