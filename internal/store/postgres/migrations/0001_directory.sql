-- The directory: tenants, objects and the relations between them, and the
-- audit log. Key columns use COLLATE "C" so that they sort bytewise, like
-- SQLite and Go, whatever the database's default collation. Documents are
-- BYTEA, not JSONB, which would reorder keys and lose the exact bytes.

CREATE TABLE tenants (
    id              TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    name            TEXT NOT NULL,
    name_key        TEXT COLLATE "C" NOT NULL UNIQUE,   -- lower-cased name
    domain          TEXT NOT NULL,
    domain_key      TEXT COLLATE "C" NOT NULL UNIQUE,   -- lower-cased domain
    subscription_id TEXT NOT NULL,
    created         TIMESTAMPTZ NOT NULL
);

CREATE TABLE objects (
    tenant_id        TEXT COLLATE "C" NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id               TEXT COLLATE "C" NOT NULL,
    kind             TEXT COLLATE "C" NOT NULL,
    app_id           TEXT COLLATE "C",                  -- NULL when the kind has none
    display_name     TEXT NOT NULL,
    display_name_key TEXT COLLATE "C" NOT NULL,         -- lower-cased display name
    names            TEXT NOT NULL,                     -- JSON array of Object.Names as given
    data             BYTEA NOT NULL,                    -- the JSON document, byte for byte
    version          BIGINT NOT NULL,
    created          TIMESTAMPTZ NOT NULL,
    updated          TIMESTAMPTZ NOT NULL,
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
    tenant_id TEXT COLLATE "C" NOT NULL,
    kind      TEXT COLLATE "C" NOT NULL,
    name_key  TEXT COLLATE "C" NOT NULL,
    object_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, kind, name_key),
    FOREIGN KEY (tenant_id, object_id) REFERENCES objects (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX object_names_object ON object_names (tenant_id, object_id);

CREATE TABLE links (
    tenant_id TEXT COLLATE "C" NOT NULL,
    kind      TEXT COLLATE "C" NOT NULL,
    from_id   TEXT COLLATE "C" NOT NULL,
    to_id     TEXT COLLATE "C" NOT NULL,
    to_kind   TEXT NOT NULL,
    created   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, from_id, kind, to_id),
    FOREIGN KEY (tenant_id, from_id) REFERENCES objects (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, to_id) REFERENCES objects (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX links_to ON links (tenant_id, to_id, kind, from_id);

CREATE TABLE app_role_assignments (
    tenant_id      TEXT COLLATE "C" NOT NULL,
    id             TEXT COLLATE "C" NOT NULL,
    principal_id   TEXT COLLATE "C" NOT NULL,
    principal_type TEXT NOT NULL,
    resource_id    TEXT COLLATE "C" NOT NULL,
    app_role_id    TEXT COLLATE "C" NOT NULL,
    created        TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, principal_id) REFERENCES objects (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, resource_id) REFERENCES objects (tenant_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX app_role_assignments_grant ON app_role_assignments (tenant_id, principal_id, resource_id, app_role_id);
CREATE INDEX app_role_assignments_principal ON app_role_assignments (tenant_id, principal_id, id);
CREATE INDEX app_role_assignments_resource ON app_role_assignments (tenant_id, resource_id, id);

-- Append-only. No foreign key to tenants: records outlive the tenant.
CREATE TABLE audit (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at            TIMESTAMPTZ NOT NULL,
    actor         TEXT NOT NULL,
    actor_tenant  TEXT COLLATE "C" NOT NULL,
    target_tenant TEXT COLLATE "C" NOT NULL,
    action        TEXT NOT NULL,
    target        TEXT NOT NULL,
    result        TEXT NOT NULL,
    client_addr   TEXT NOT NULL,
    request_id    TEXT NOT NULL,
    detail        TEXT NOT NULL
);
CREATE INDEX audit_actor_tenant ON audit (actor_tenant, seq);
CREATE INDEX audit_target_tenant ON audit (target_tenant, seq);
