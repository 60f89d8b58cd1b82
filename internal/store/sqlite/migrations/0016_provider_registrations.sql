-- Resource provider registrations (store.ProviderRegistrations): the
-- registrationState of one namespace in one subscription, as
-- POST /subscriptions/{id}/providers/{ns}/register and /unregister leave
-- it. A namespace without a row has the state Resource Manager gives it by
-- default. Keys are lower-cased in Go; the namespace is kept as given. A
-- registration goes with its tenant. Nothing caches it: no generation
-- moves for it. Timestamps are text in sqlstore.FormatTime's form.

CREATE TABLE provider_registrations (
    sub_key          TEXT NOT NULL,
    ns_key           TEXT NOT NULL,
    tenant_id        TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    subscription_id  TEXT NOT NULL,
    namespace        TEXT NOT NULL,
    state            TEXT NOT NULL,
    updated          TEXT NOT NULL,
    PRIMARY KEY (sub_key, ns_key)
);
CREATE INDEX provider_registrations_tenant ON provider_registrations (tenant_id);
