-- Resource provider registrations (store.ProviderRegistrations): the
-- registrationState of one namespace in one subscription, as
-- POST /subscriptions/{id}/providers/{ns}/register and /unregister leave
-- it. A namespace without a row has the state Resource Manager gives it by
-- default. Keys are lower-cased in Go; the namespace is kept as given. A
-- registration goes with its tenant. Nothing caches it, so the table has
-- no change-notify trigger (0006). Key columns use COLLATE "C", like
-- SQLite and Go.

CREATE TABLE provider_registrations (
    sub_key          TEXT COLLATE "C" NOT NULL,
    ns_key           TEXT COLLATE "C" NOT NULL,
    tenant_id        TEXT COLLATE "C" NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    subscription_id  TEXT NOT NULL,
    namespace        TEXT NOT NULL,
    state            TEXT NOT NULL,
    updated          TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (sub_key, ns_key)
);
CREATE INDEX provider_registrations_tenant ON provider_registrations (tenant_id);
