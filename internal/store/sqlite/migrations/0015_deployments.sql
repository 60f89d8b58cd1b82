-- Template deployments (store.Deployments): the arm package's JSON
-- document of each deployment with the keys it is found by. grp_key is the
-- lower-cased resource group name, '' at subscription scope; rg_key is the
-- same but NULL at subscription scope, so that the foreign key (not
-- checked when a column is NULL) ties a group's deployments to the group
-- and the tenant's to the tenant. Nothing caches deployments: no
-- generation moves for them. Timestamps are text in sqlstore.FormatTime's
-- form.

CREATE TABLE arm_deployments (
    sub_key          TEXT NOT NULL,
    grp_key          TEXT NOT NULL,
    name_key         TEXT NOT NULL,
    rg_key           TEXT,
    tenant_id        TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    subscription_id  TEXT NOT NULL,
    resource_group   TEXT NOT NULL,
    name             TEXT NOT NULL,
    state            TEXT NOT NULL,
    document         TEXT NOT NULL,                -- JSON object
    created          TEXT NOT NULL,
    updated          TEXT NOT NULL,
    PRIMARY KEY (sub_key, grp_key, name_key),
    FOREIGN KEY (sub_key, rg_key) REFERENCES resource_groups (sub_key, name_key) ON DELETE CASCADE
);
CREATE INDEX arm_deployments_state ON arm_deployments (state, updated);
CREATE INDEX arm_deployments_tenant ON arm_deployments (tenant_id);
