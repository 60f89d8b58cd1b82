-- Management locks (store.ManagementLocks): Microsoft.Authorization/locks
-- at a subscription, a resource group or a resource. Keys are lower-cased
-- in Go; the scope and name are kept as given. Owners are a JSON array of
-- application ids. A lock goes with its tenant. Nothing caches it: no
-- generation moves for it. Timestamps are text in sqlstore.FormatTime's
-- form.

CREATE TABLE management_locks (
    scope_key        TEXT NOT NULL,
    name_key         TEXT NOT NULL,
    sub_key          TEXT NOT NULL,
    tenant_id        TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    subscription_id  TEXT NOT NULL,
    scope            TEXT NOT NULL,
    name             TEXT NOT NULL,
    level            TEXT NOT NULL,
    notes            TEXT NOT NULL,
    owners           TEXT NOT NULL,
    created          TEXT NOT NULL,
    updated          TEXT NOT NULL,
    PRIMARY KEY (scope_key, name_key)
);
CREATE INDEX management_locks_sub ON management_locks (sub_key);
CREATE INDEX management_locks_tenant ON management_locks (tenant_id);
