-- The directory: tenants, objects and the relations between them, and the
-- audit log. Timestamps are text in sqlstore.FormatTime's fixed-width UTC
-- form (microseconds), so text order is time order. Key columns compare
-- bytewise (BINARY), matching PostgreSQL's COLLATE "C" and Go.

CREATE TABLE tenants (
    id              TEXT NOT NULL PRIMARY KEY,
    name            TEXT NOT NULL,
    name_key        TEXT NOT NULL UNIQUE,   -- lower-cased name
    domain          TEXT NOT NULL,
    domain_key      TEXT NOT NULL UNIQUE,   -- lower-cased domain
    subscription_id TEXT NOT NULL,
    created         TEXT NOT NULL
);

CREATE TABLE objects (
    tenant_id        TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id               TEXT NOT NULL,
    kind             TEXT NOT NULL,
    app_id           TEXT,                  -- NULL when the kind has none
    display_name     TEXT NOT NULL,
    display_name_key TEXT NOT NULL,         -- lower-cased display name
    names            TEXT NOT NULL,         -- JSON array of Object.Names as given
    data             BLOB NOT NULL,         -- the JSON document, byte for byte
    version          INTEGER NOT NULL,
    created          TEXT NOT NULL,
    updated          TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
-- An application's appId is unique across all tenants; a service
-- principal's only within its tenant (one per app per tenant). appId leads
-- both so that they also serve lookups across tenants.
CREATE UNIQUE INDEX objects_application_app_id ON objects (app_id) WHERE kind = 'application';
CREATE UNIQUE INDEX objects_service_principal_app_id ON objects (app_id, tenant_id) WHERE kind = 'servicePrincipal';
CREATE INDEX objects_kind ON objects (tenant_id, kind, id);
CREATE INDEX objects_app_id ON objects (tenant_id, kind, app_id);
CREATE INDEX objects_display_name ON objects (tenant_id, kind, display_name_key);

-- The unique lookup keys of objects (identifierUris, servicePrincipalNames,
-- userPrincipalName), lower-cased, unique within a tenant and kind.
CREATE TABLE object_names (
    tenant_id TEXT NOT NULL,
    kind      TEXT NOT NULL,
    name_key  TEXT NOT NULL,
    object_id TEXT NOT NULL,
    PRIMARY KEY (tenant_id, kind, name_key),
    FOREIGN KEY (tenant_id, object_id) REFERENCES objects (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX object_names_object ON object_names (tenant_id, object_id);

CREATE TABLE links (
    tenant_id TEXT NOT NULL,
    kind      TEXT NOT NULL,
    from_id   TEXT NOT NULL,
    to_id     TEXT NOT NULL,
    to_kind   TEXT NOT NULL,
    created   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, from_id, kind, to_id),
    FOREIGN KEY (tenant_id, from_id) REFERENCES objects (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, to_id) REFERENCES objects (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX links_to ON links (tenant_id, to_id, kind, from_id);

CREATE TABLE app_role_assignments (
    tenant_id      TEXT NOT NULL,
    id             TEXT NOT NULL,
    principal_id   TEXT NOT NULL,
    principal_type TEXT NOT NULL,
    resource_id    TEXT NOT NULL,
    app_role_id    TEXT NOT NULL,
    created        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, principal_id) REFERENCES objects (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, resource_id) REFERENCES objects (tenant_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX app_role_assignments_grant ON app_role_assignments (tenant_id, principal_id, resource_id, app_role_id);
CREATE INDEX app_role_assignments_principal ON app_role_assignments (tenant_id, principal_id, id);
CREATE INDEX app_role_assignments_resource ON app_role_assignments (tenant_id, resource_id, id);

-- Append-only. No foreign key to tenants: records outlive the tenant.
-- AUTOINCREMENT so that a Seq is never reused, even after the last row
-- is gone.
CREATE TABLE audit (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    at            TEXT NOT NULL,
    actor         TEXT NOT NULL,
    actor_tenant  TEXT NOT NULL,
    target_tenant TEXT NOT NULL,
    action        TEXT NOT NULL,
    target        TEXT NOT NULL,
    result        TEXT NOT NULL,
    client_addr   TEXT NOT NULL,
    request_id    TEXT NOT NULL,
    detail        TEXT NOT NULL
);
CREATE INDEX audit_actor_tenant ON audit (actor_tenant, seq);
CREATE INDEX audit_target_tenant ON audit (target_tenant, seq);
