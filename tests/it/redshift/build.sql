-- connection 1
SELECT version();
-- connection 2
SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'xt_public' AND c.relname = 'xform_run_lock';
CREATE SCHEMA IF NOT EXISTS "xt_public"; CREATE TABLE IF NOT EXISTS "xt_public"."xform_run_lock" (holder VARCHAR(256));
SET statement_timeout = 1000; BEGIN; LOCK TABLE "xt_public"."xform_run_lock";
SET statement_timeout = 0;
-- connection 3
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema' AND (c.relname LIKE '%\_\_xform\_new' OR c.relname LIKE '%\_\_xform\_old');
SELECT nspname FROM pg_namespace WHERE nspname IN ('xt_analytics', 'xt_raw_data', 'xt_snapshots');
CREATE SCHEMA IF NOT EXISTS "xt_analytics";
CREATE SCHEMA IF NOT EXISTS "xt_raw_data";
CREATE SCHEMA IF NOT EXISTS "xt_snapshots";
BEGIN;
GRANT SELECT ON ALL TABLES IN SCHEMA "xt_analytics" TO GROUP "xt_rs_group";
ALTER DEFAULT PRIVILEGES IN SCHEMA "xt_analytics" GRANT SELECT ON TABLES TO GROUP "xt_rs_group";
GRANT USAGE ON SCHEMA "xt_analytics" TO GROUP "xt_rs_group";
GRANT USAGE ON SCHEMA "xt_analytics" TO ROLE "xt_rs_role";
COMMIT;
SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('xt_analytics', 'xt_raw_data', 'xt_snapshots') AND c.relkind IN ('r', 'p', 'v', 'm', 'f');
BEGIN;
CREATE TABLE "xt_raw_data"."orders" ("order_id" integer, "customer" varchar(4), "amount" numeric(6, 2), "product" varchar(20), "ordered_at" timestamp);
INSERT INTO "xt_raw_data"."orders" VALUES
('1', 'kim', '1000.50', '라면', '2024-01-01 10:00:00'),
('2', 'lee', '2500', '김치', '2024-01-02 09:00:00'),
('3', 'kim', '700', '떡볶이, 매운맛', '2024-01-03 12:00:00'),
(NULL, 'park', '10', NULL, '2024-01-03 13:00:00');
COMMIT;
BEGIN;
CREATE OR REPLACE VIEW "xt_raw_data"."late_orders" AS

select order_id, customer from "xt_raw_data"."orders"
WITH NO SCHEMA BINDING;
COMMIT;
BEGIN;
CREATE OR REPLACE VIEW "xt_raw_data"."stg_orders" AS
select order_id, customer, amount, product, ordered_at from "xt_raw_data"."orders";
COMMIT;
BEGIN;
CREATE TABLE "xt_snapshots"."orders_history" AS
SELECT s.*, md5(coalesce(coalesce(CAST(s."order_id" AS VARCHAR(65535)), ''), '') || '|' || coalesce(CAST(TIMESTAMP '<run time>' AS VARCHAR(65535)), '')) AS "dbt_scd_id", TIMESTAMP '<run time>' AS "dbt_updated_at", TIMESTAMP '<run time>' AS "dbt_valid_from", CAST(NULL AS TIMESTAMP) AS "dbt_valid_to"
FROM (
                             

select order_id, customer, amount from "xt_raw_data"."orders"
) AS s;
COMMIT;
BEGIN;
CREATE TABLE "xt_analytics"."appended" DISTSTYLE ALL AS

select count(*) as n from "xt_raw_data"."stg_orders";
SELECT privilege_type, identity_type, identity_name FROM svv_relation_privileges WHERE namespace_name = 'xt_analytics' AND relation_name = 'appended' AND identity_name <> current_user;
GRANT SELECT ON "xt_analytics"."appended" TO ROLE "xt_rs_role";
COMMIT;
SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'xt_raw_data' AND c.relname = 'stg_orders' AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum;
SELECT * FROM (
WITH "__xform_given_0" AS (
SELECT CAST(1 AS numeric(6,2)) AS "amount", CAST('a' AS character varying(4)) AS "customer", CAST(NULL AS integer) AS "order_id", CAST(NULL AS character varying(20)) AS "product", CAST(NULL AS timestamp without time zone) AS "ordered_at"
UNION ALL SELECT CAST(2 AS numeric(6,2)) AS "amount", CAST('a' AS character varying(4)) AS "customer", CAST(NULL AS integer) AS "order_id", CAST(NULL AS character varying(20)) AS "product", CAST(NULL AS timestamp without time zone) AS "ordered_at"
),
"__xform_model" AS (

select customer, sum(amount) as total, count(*) as orders from "__xform_given_0" group by customer
)
select * from "__xform_model"
) AS q LIMIT 10000;
BEGIN;
CREATE TABLE "xt_analytics"."by_customer" BACKUP NO DISTSTYLE KEY DISTKEY ("customer") COMPOUND SORTKEY ("customer") AS

select customer, sum(amount) as total, count(*) as orders from "xt_raw_data"."stg_orders" group by customer;
SELECT 0 AS i, count(*) AS n FROM (
select customer as unique_field, count(*) as n_records
from "xt_analytics"."by_customer"
where customer is not null
group by customer
having count(*) > 1
) AS t0
UNION ALL
SELECT 1 AS i, count(*) AS n FROM (
select *
from "xt_analytics"."by_customer"
where customer is null
) AS t1;
SELECT privilege_type, identity_type, identity_name FROM svv_relation_privileges WHERE namespace_name = 'xt_analytics' AND relation_name = 'by_customer' AND identity_name <> current_user;
GRANT SELECT ON "xt_analytics"."by_customer" TO ROLE "xt_rs_role";
COMMENT ON TABLE "xt_analytics"."by_customer" IS '고객별 매출 합계';
COMMENT ON COLUMN "xt_analytics"."by_customer"."customer" IS '고객 이름';
COMMIT;
BEGIN;
CREATE TABLE "xt_analytics"."merged" DISTSTYLE EVEN AS

select order_id, customer, amount from "xt_raw_data"."stg_orders";
SELECT privilege_type, identity_type, identity_name FROM svv_relation_privileges WHERE namespace_name = 'xt_analytics' AND relation_name = 'merged' AND identity_name <> current_user;
GRANT SELECT ON "xt_analytics"."merged" TO ROLE "xt_rs_role";
COMMIT;
BEGIN;
CREATE TABLE "xt_analytics"."replaced" INTERLEAVED SORTKEY ("order_id") AS

select order_id, product from "xt_raw_data"."stg_orders";
SELECT privilege_type, identity_type, identity_name FROM svv_relation_privileges WHERE namespace_name = 'xt_analytics' AND relation_name = 'replaced' AND identity_name <> current_user;
GRANT SELECT ON "xt_analytics"."replaced" TO ROLE "xt_rs_role";
COMMIT;
BEGIN;
CREATE OR REPLACE VIEW "xt_analytics"."big_spenders" AS

select customer from "xt_analytics"."by_customer" where total > 1000;
SELECT privilege_type, identity_type, identity_name FROM svv_relation_privileges WHERE namespace_name = 'xt_analytics' AND relation_name = 'big_spenders' AND identity_name <> current_user;
GRANT SELECT ON "xt_analytics"."big_spenders" TO ROLE "xt_rs_role";
COMMIT;
