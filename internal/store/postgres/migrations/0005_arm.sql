-- Azure Resource Manager: resource groups and generic resources
-- (store.ARM). Keys are lower-cased in Go (sub_key, name_key, id_key); the
-- names and ids are kept as given. A resource group goes with its tenant,
-- a resource with its resource group (ON DELETE CASCADE). Tags and
-- properties are JSON text, read whole. Key columns use COLLATE "C",
-- like SQLite and Go.

CREATE TABLE resource_groups (
    sub_key          TEXT COLLATE "C" NOT NULL,                -- lower-cased subscription id
    name_key         TEXT COLLATE "C" NOT NULL,                -- lower-cased name
    tenant_id        TEXT COLLATE "C" NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    subscription_id  TEXT NOT NULL,
    name             TEXT NOT NULL,
    location         TEXT NOT NULL,
    tags             TEXT NOT NULL,                -- JSON object
    created          TIMESTAMPTZ NOT NULL,
    updated          TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (sub_key, name_key)
);
CREATE INDEX resource_groups_tenant ON resource_groups (tenant_id);

CREATE TABLE arm_resources (
    id_key           TEXT COLLATE "C" NOT NULL PRIMARY KEY,    -- lower-cased resource id
    sub_key          TEXT COLLATE "C" NOT NULL,
    rg_key           TEXT COLLATE "C" NOT NULL,
    tenant_id        TEXT COLLATE "C" NOT NULL,
    id               TEXT NOT NULL,
    type_key         TEXT COLLATE "C" NOT NULL,                -- lower-cased type
    type             TEXT NOT NULL,
    name             TEXT NOT NULL,
    location         TEXT NOT NULL,
    tags             TEXT NOT NULL,                -- JSON object
    properties       TEXT NOT NULL,                -- JSON object
    created          TIMESTAMPTZ NOT NULL,
    updated          TIMESTAMPTZ NOT NULL,
    FOREIGN KEY (sub_key, rg_key) REFERENCES resource_groups (sub_key, name_key) ON DELETE CASCADE
);
CREATE INDEX arm_resources_group ON arm_resources (sub_key, rg_key, id_key);
CREATE INDEX arm_resources_type ON arm_resources (sub_key, type_key, id_key);
