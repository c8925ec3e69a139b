-- connection 1
SELECT version();
-- connection 2
SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'xt_public' AND c.relname = 'xform_run_lock';
SET statement_timeout = 1000; BEGIN; LOCK TABLE "xt_public"."xform_run_lock";
SET statement_timeout = 0;
-- connection 3
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema' AND (c.relname LIKE '%\_\_xform\_new' OR c.relname LIKE '%\_\_xform\_old');
SELECT nspname FROM pg_namespace WHERE nspname IN ('xt_analytics');
BEGIN;
GRANT SELECT ON ALL TABLES IN SCHEMA "xt_analytics" TO GROUP "xt_rs_group";
ALTER DEFAULT PRIVILEGES IN SCHEMA "xt_analytics" GRANT SELECT ON TABLES TO GROUP "xt_rs_group";
GRANT USAGE ON SCHEMA "xt_analytics" TO GROUP "xt_rs_group";
GRANT USAGE ON SCHEMA "xt_analytics" TO ROLE "xt_rs_role";
COMMIT;
SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('xt_analytics') AND c.relkind IN ('r', 'p', 'v', 'm', 'f');
BEGIN;
CREATE TABLE "xt_analytics"."daily" AS
SELECT * FROM (

select order_id, amount, ordered_at from "xt_raw_data"."stg_orders"
) AS __xform_batch
WHERE "ordered_at" >= TIMESTAMP '2024-01-01 00:00:00' AND "ordered_at" < TIMESTAMP '2024-01-04 00:00:00';
SELECT privilege_type, identity_type, identity_name FROM svv_relation_privileges WHERE namespace_name = 'xt_analytics' AND relation_name = 'daily' AND identity_name <> current_user;
GRANT SELECT ON "xt_analytics"."daily" TO ROLE "xt_rs_role";
COMMIT;
