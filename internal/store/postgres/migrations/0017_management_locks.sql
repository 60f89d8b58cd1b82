-- Management locks (store.ManagementLocks): Microsoft.Authorization/locks
-- at a subscription, a resource group or a resource. Keys are lower-cased
-- in Go; the scope and name are kept as given. Owners are a JSON array of
-- application ids. A lock goes with its tenant. Nothing caches it, so the
-- table has no change-notify trigger (0006). Key columns use COLLATE "C",
-- like SQLite and Go.

CREATE TABLE management_locks (
    scope_key        TEXT COLLATE "C" NOT NULL,
    name_key         TEXT COLLATE "C" NOT NULL,
    sub_key          TEXT COLLATE "C" NOT NULL,
    tenant_id        TEXT COLLATE "C" NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    subscription_id  TEXT NOT NULL,
    scope            TEXT NOT NULL,
    name             TEXT NOT NULL,
    level            TEXT NOT NULL,
    notes            TEXT NOT NULL,
    owners           TEXT NOT NULL,
    created          TIMESTAMPTZ NOT NULL,
    updated          TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scope_key, name_key)
);
CREATE INDEX management_locks_sub ON management_locks (sub_key);
CREATE INDEX management_locks_tenant ON management_locks (tenant_id);
