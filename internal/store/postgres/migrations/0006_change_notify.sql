-- Change notification (store.Store.Generation). Every statement that
-- changes a table whose rows the services cache (directory, RBAC, vaults
-- and secrets, ARM) notifies the channel tenantbridge_changes with the
-- table's schema and the writing connection's application_name (which
-- names the tenantbridge process) as payload. PostgreSQL delivers a notification when, and
-- only if, its transaction commits, and folds identical ones within a
-- transaction, so every process sharing the database hears of every
-- committed change at the cost of one notification per transaction. The
-- listener ignores payloads naming another schema (another deployment, or
-- another test, sharing the database) and its own process's writes, which
-- it already counted. audit and one_time_use are
-- append-only logs that nothing caches: they do not notify.

CREATE FUNCTION tenantbridge_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tenantbridge_changes', TG_TABLE_SCHEMA || ' ' || coalesce(current_setting('application_name', true), ''));
    RETURN NULL;
END
$$;

CREATE TRIGGER tenants_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenants
    FOR EACH STATEMENT EXECUTE FUNCTION tenantbridge_notify_change();
CREATE TRIGGER objects_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON objects
    FOR EACH STATEMENT EXECUTE FUNCTION tenantbridge_notify_change();
CREATE TRIGGER object_names_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON object_names
    FOR EACH STATEMENT EXECUTE FUNCTION tenantbridge_notify_change();
CREATE TRIGGER links_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON links
    FOR EACH STATEMENT EXECUTE FUNCTION tenantbridge_notify_change();
CREATE TRIGGER app_role_assignments_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON app_role_assignments
    FOR EACH STATEMENT EXECUTE FUNCTION tenantbridge_notify_change();
CREATE TRIGGER role_definitions_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON role_definitions
    FOR EACH STATEMENT EXECUTE FUNCTION tenantbridge_notify_change();
CREATE TRIGGER role_assignments_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON role_assignments
    FOR EACH STATEMENT EXECUTE FUNCTION tenantbridge_notify_change();
CREATE TRIGGER deny_assignments_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON deny_assignments
    FOR EACH STATEMENT EXECUTE FUNCTION tenantbridge_notify_change();
CREATE TRIGGER vaults_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON vaults
    FOR EACH STATEMENT EXECUTE FUNCTION tenantbridge_notify_change();
CREATE TRIGGER vault_secrets_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON vault_secrets
    FOR EACH STATEMENT EXECUTE FUNCTION tenantbridge_notify_change();
CREATE TRIGGER resource_groups_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON resource_groups
    FOR EACH STATEMENT EXECUTE FUNCTION tenantbridge_notify_change();
CREATE TRIGGER arm_resources_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON arm_resources
    FOR EACH STATEMENT EXECUTE FUNCTION tenantbridge_notify_change();
