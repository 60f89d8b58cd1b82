-- Azure RBAC: custom role definitions, role assignments and deny
-- assignments (store.RBAC). Built-in roles live in code (package rbac).
-- Key columns use COLLATE "C" (bytewise, like SQLite and Go). Scopes are kept as given and, lower-cased in Go, in scope_key, which is
-- what lookups compare. Permissions and principals are JSON text: they are
-- read whole and never queried into. Everything references tenants with
-- ON DELETE CASCADE, so DeleteTenant removes it.

CREATE TABLE role_definitions (
    tenant_id         TEXT COLLATE "C" NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id                TEXT COLLATE "C" NOT NULL,
    name              TEXT NOT NULL,
    name_key          TEXT COLLATE "C" NOT NULL,         -- lower-cased role name
    description       TEXT NOT NULL,
    permissions       TEXT NOT NULL,         -- JSON array of store.Permission
    assignable_scopes TEXT NOT NULL,         -- JSON array of scopes as given
    created           TIMESTAMPTZ NOT NULL,
    updated           TIMESTAMPTZ NOT NULL,
    created_by        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX role_definitions_name ON role_definitions (tenant_id, name_key);

-- principal_tenant_id is the principal's home tenant (itself for a local
-- principal): deleting either tenant removes the assignment.
CREATE TABLE role_assignments (
    tenant_id           TEXT COLLATE "C" NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id                  TEXT COLLATE "C" NOT NULL,
    scope               TEXT NOT NULL,
    scope_key           TEXT COLLATE "C" NOT NULL,       -- lower-cased scope
    role_definition_id  TEXT COLLATE "C" NOT NULL,       -- lower-cased GUID
    principal_id        TEXT COLLATE "C" NOT NULL,
    principal_type      TEXT NOT NULL,
    principal_tenant_id TEXT COLLATE "C" NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    created             TIMESTAMPTZ NOT NULL,
    created_by          TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX role_assignments_grant ON role_assignments (tenant_id, scope_key, role_definition_id, principal_id);
CREATE INDEX role_assignments_principal ON role_assignments (tenant_id, principal_id, scope_key);
CREATE INDEX role_assignments_principal_tenant ON role_assignments (principal_tenant_id);

CREATE TABLE deny_assignments (
    tenant_id                    TEXT COLLATE "C" NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id                           TEXT COLLATE "C" NOT NULL,
    name                         TEXT NOT NULL,
    name_key                     TEXT COLLATE "C" NOT NULL,   -- lower-cased name
    description                  TEXT NOT NULL,
    scope                        TEXT NOT NULL,
    scope_key                    TEXT COLLATE "C" NOT NULL,   -- lower-cased scope
    permissions                  TEXT NOT NULL,   -- JSON array of store.Permission
    principals                   TEXT NOT NULL,   -- JSON array of store.DenyPrincipal
    exclude_principals           TEXT NOT NULL,   -- JSON array of store.DenyPrincipal
    do_not_apply_to_child_scopes BOOLEAN NOT NULL,
    is_system_protected          BOOLEAN NOT NULL,
    created                      TIMESTAMPTZ NOT NULL,
    created_by                   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX deny_assignments_name ON deny_assignments (tenant_id, scope_key, name_key);

-- A scope finds its tenant by subscription id (store.RBAC.TenantsBySubscription).
CREATE INDEX tenants_subscription ON tenants (lower(subscription_id));
