-- connection 1
SELECT version();
-- connection 2
SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'xt_public' AND c.relname = 'xform_run_lock';
SET statement_timeout = 1000; BEGIN; LOCK TABLE "xt_public"."xform_run_lock";
SET statement_timeout = 0;
-- connection 3
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema' AND (c.relname LIKE '%\_\_xform\_new' OR c.relname LIKE '%\_\_xform\_old');
SELECT nspname FROM pg_namespace WHERE nspname IN ('xt_analytics', 'xt_raw_data', 'xt_snapshots');
BEGIN;
GRANT SELECT ON ALL TABLES IN SCHEMA "xt_analytics" TO GROUP "xt_rs_group";
ALTER DEFAULT PRIVILEGES IN SCHEMA "xt_analytics" GRANT SELECT ON TABLES TO GROUP "xt_rs_group";
GRANT USAGE ON SCHEMA "xt_analytics" TO GROUP "xt_rs_group";
GRANT USAGE ON SCHEMA "xt_analytics" TO ROLE "xt_rs_role";
COMMIT;
SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('xt_analytics', 'xt_raw_data', 'xt_snapshots') AND c.relkind IN ('r', 'p', 'v', 'm', 'f');
BEGIN;
CREATE TABLE "xt_raw_data"."orders__xform_new" ("order_id" integer, "customer" varchar(4), "amount" numeric(6, 2), "product" varchar(20), "ordered_at" timestamp);
INSERT INTO "xt_raw_data"."orders__xform_new" VALUES
('1', 'kim', '1000.50', '라면', '2024-01-01 10:00:00'),
('2', 'lee', '3000', '김치', '2024-01-02 09:00:00'),
('3', 'kim', '700', '떡볶이, 매운맛', '2024-01-03 12:00:00'),
(NULL, 'park', '10', NULL, '2024-01-03 13:00:00'),
('5', 'choi', '42', '만두', '2024-01-03 15:00:00');
WITH RECURSIVE deps(oid, depth) AS (
SELECT r.ev_class, 1 FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
JOIN pg_class c ON c.oid = d.refobjid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE d.refclassid = 1259 AND n.nspname = 'xt_raw_data' AND c.relname = 'orders'
AND d.classid = 2618 AND r.ev_class <> c.oid
UNION ALL
SELECT r.ev_class, deps.depth + 1 FROM deps JOIN pg_depend d
ON d.refclassid = 1259 AND d.refobjid = deps.oid
JOIN pg_rewrite r ON r.oid = d.objid
WHERE d.classid = 2618 AND r.ev_class <> deps.oid)
SELECT n.nspname, c.relname, pg_get_viewdef(c.oid) FROM deps
JOIN pg_class c ON c.oid = deps.oid AND c.relkind = 'v'
JOIN pg_namespace n ON n.oid = c.relnamespace WHERE deps.depth = 1
GROUP BY 1, 2, 3 ORDER BY max(deps.depth), 1, 2;
ALTER TABLE "xt_raw_data"."orders" RENAME TO "orders__xform_old";
ALTER TABLE "xt_raw_data"."orders__xform_new" RENAME TO "orders";
CREATE OR REPLACE VIEW "xt_raw_data"."late_orders" AS
 SELECT orders.order_id,
    orders.customer
   FROM xt_raw_data.orders;
CREATE OR REPLACE VIEW "xt_raw_data"."stg_orders" AS
 SELECT orders.order_id,
    orders.customer,
    orders.amount,
    orders.product,
    orders.ordered_at
   FROM xt_raw_data.orders;
DROP TABLE "xt_raw_data"."orders__xform_old";
COMMIT;
BEGIN;
WITH RECURSIVE deps(oid, depth) AS (
SELECT r.ev_class, 1 FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
JOIN pg_class c ON c.oid = d.refobjid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE d.refclassid = 1259 AND n.nspname = 'xt_raw_data' AND c.relname = 'late_orders'
AND d.classid = 2618 AND r.ev_class <> c.oid
UNION ALL
SELECT r.ev_class, deps.depth + 1 FROM deps JOIN pg_depend d
ON d.refclassid = 1259 AND d.refobjid = deps.oid
JOIN pg_rewrite r ON r.oid = d.objid
WHERE d.classid = 2618 AND r.ev_class <> deps.oid)
SELECT n.nspname, c.relname, pg_get_viewdef(c.oid) FROM deps
JOIN pg_class c ON c.oid = deps.oid AND c.relkind = 'v'
JOIN pg_namespace n ON n.oid = c.relnamespace 
GROUP BY 1, 2, 3 ORDER BY max(deps.depth), 1, 2;
DROP VIEW "xt_raw_data"."late_orders";
CREATE OR REPLACE VIEW "xt_raw_data"."late_orders" AS

select order_id, customer from "xt_raw_data"."orders"
WITH NO SCHEMA BINDING;
COMMIT;
BEGIN;
WITH RECURSIVE deps(oid, depth) AS (
SELECT r.ev_class, 1 FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
JOIN pg_class c ON c.oid = d.refobjid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE d.refclassid = 1259 AND n.nspname = 'xt_raw_data' AND c.relname = 'stg_orders'
AND d.classid = 2618 AND r.ev_class <> c.oid
UNION ALL
SELECT r.ev_class, deps.depth + 1 FROM deps JOIN pg_depend d
ON d.refclassid = 1259 AND d.refobjid = deps.oid
JOIN pg_rewrite r ON r.oid = d.objid
WHERE d.classid = 2618 AND r.ev_class <> deps.oid)
SELECT n.nspname, c.relname, pg_get_viewdef(c.oid) FROM deps
JOIN pg_class c ON c.oid = deps.oid AND c.relkind = 'v'
JOIN pg_namespace n ON n.oid = c.relnamespace 
GROUP BY 1, 2, 3 ORDER BY max(deps.depth), 1, 2;
DROP VIEW "xt_raw_data"."stg_orders";
CREATE OR REPLACE VIEW "xt_raw_data"."stg_orders" AS
select order_id, customer, amount, product, ordered_at from "xt_raw_data"."orders";
COMMIT;
BEGIN;
CREATE TEMP TABLE "__xform_new__orders_history" AS
                             

select order_id, customer, amount from "xt_raw_data"."orders";
SELECT CAST("order_id" AS VARCHAR(65535)), count(*) FROM "__xform_new__orders_history" GROUP BY "order_id" HAVING count(*) > 1 LIMIT 1;
SELECT a.attname AS column_name, format_type(a.atttypid, a.atttypmod) AS column_type FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = '__xform_new__orders_history' AND pg_table_is_visible(c.oid) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum;
SELECT a.attname AS column_name, format_type(a.atttypid, a.atttypmod) AS column_type FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = 'orders_history' AND n.nspname = 'xt_snapshots' AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum;
UPDATE "xt_snapshots"."orders_history" AS t SET "dbt_valid_to" = TIMESTAMP '<run time>'
FROM "__xform_new__orders_history" AS n
WHERE t."dbt_valid_to" IS NULL AND coalesce(t."order_id", 0) = coalesce(n."order_id", 0) AND (t."order_id" IS NULL) = (n."order_id" IS NULL) AND ((coalesce(t."amount" <> n."amount", false) OR (t."amount" IS NULL) <> (n."amount" IS NULL)));
INSERT INTO "xt_snapshots"."orders_history" ("order_id", "customer", "amount", "dbt_scd_id", "dbt_updated_at", "dbt_valid_from", "dbt_valid_to")
SELECT n."order_id", n."customer", n."amount", md5(coalesce(coalesce(CAST(n."order_id" AS VARCHAR(65535)), ''), '') || '|' || coalesce(CAST(TIMESTAMP '<run time>' AS VARCHAR(65535)), '')), TIMESTAMP '<run time>', TIMESTAMP '<run time>', NULL FROM "__xform_new__orders_history" AS n
WHERE NOT EXISTS (SELECT 1 FROM "xt_snapshots"."orders_history" AS t WHERE t."dbt_valid_to" IS NULL AND coalesce(t."order_id", 0) = coalesce(n."order_id", 0) AND (t."order_id" IS NULL) = (n."order_id" IS NULL));
DROP TABLE "__xform_new__orders_history";
COMMIT;
BEGIN;
CREATE TEMP TABLE "__xform_new__appended" AS

select count(*) as n from "xt_raw_data"."stg_orders";
SELECT a.attname AS column_name, format_type(a.atttypid, a.atttypmod) AS column_type FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = '__xform_new__appended' AND pg_table_is_visible(c.oid) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum;
SELECT a.attname AS column_name, format_type(a.atttypid, a.atttypmod) AS column_type FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = 'appended' AND n.nspname = 'xt_analytics' AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum;
INSERT INTO "xt_analytics"."appended" ("n")
SELECT n."n" FROM "__xform_new__appended" AS n;
DROP TABLE "__xform_new__appended";
SELECT privilege_type, identity_type, identity_name FROM svv_relation_privileges WHERE namespace_name = 'xt_analytics' AND relation_name = 'appended' AND identity_name <> current_user;
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
CREATE TABLE "xt_analytics"."by_customer__xform_new" BACKUP NO DISTSTYLE KEY DISTKEY ("customer") COMPOUND SORTKEY ("customer") AS

select customer, sum(amount) as total, count(*) as orders from "xt_raw_data"."stg_orders" group by customer;
SELECT 0 AS i, count(*) AS n FROM (
select customer as unique_field, count(*) as n_records
from "xt_analytics"."by_customer__xform_new"
where customer is not null
group by customer
having count(*) > 1
) AS t0
UNION ALL
SELECT 1 AS i, count(*) AS n FROM (
select *
from "xt_analytics"."by_customer__xform_new"
where customer is null
) AS t1;
WITH RECURSIVE deps(oid, depth) AS (
SELECT r.ev_class, 1 FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
JOIN pg_class c ON c.oid = d.refobjid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE d.refclassid = 1259 AND n.nspname = 'xt_analytics' AND c.relname = 'by_customer'
AND d.classid = 2618 AND r.ev_class <> c.oid
UNION ALL
SELECT r.ev_class, deps.depth + 1 FROM deps JOIN pg_depend d
ON d.refclassid = 1259 AND d.refobjid = deps.oid
JOIN pg_rewrite r ON r.oid = d.objid
WHERE d.classid = 2618 AND r.ev_class <> deps.oid)
SELECT n.nspname, c.relname, pg_get_viewdef(c.oid) FROM deps
JOIN pg_class c ON c.oid = deps.oid AND c.relkind = 'v'
JOIN pg_namespace n ON n.oid = c.relnamespace WHERE deps.depth = 1
GROUP BY 1, 2, 3 ORDER BY max(deps.depth), 1, 2;
ALTER TABLE "xt_analytics"."by_customer" RENAME TO "by_customer__xform_old";
ALTER TABLE "xt_analytics"."by_customer__xform_new" RENAME TO "by_customer";
CREATE OR REPLACE VIEW "xt_analytics"."big_spenders" AS
 SELECT by_customer.customer
   FROM xt_analytics.by_customer
  WHERE (by_customer.total > (1000)::numeric);
DROP TABLE "xt_analytics"."by_customer__xform_old";
SELECT privilege_type, identity_type, identity_name FROM svv_relation_privileges WHERE namespace_name = 'xt_analytics' AND relation_name = 'by_customer' AND identity_name <> current_user;
GRANT SELECT ON "xt_analytics"."by_customer" TO ROLE "xt_rs_role";
COMMENT ON TABLE "xt_analytics"."by_customer" IS '고객별 매출 합계';
COMMENT ON COLUMN "xt_analytics"."by_customer"."customer" IS '고객 이름';
COMMIT;
BEGIN;
CREATE TEMP TABLE "__xform_new__merged" AS

select order_id, customer, amount from "xt_raw_data"."stg_orders";
SELECT a.attname AS column_name, format_type(a.atttypid, a.atttypmod) AS column_type FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = '__xform_new__merged' AND pg_table_is_visible(c.oid) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum;
SELECT a.attname AS column_name, format_type(a.atttypid, a.atttypmod) AS column_type FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = 'merged' AND n.nspname = 'xt_analytics' AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum;
SELECT CAST("order_id" AS VARCHAR(65535)), count(*) FROM "__xform_new__merged" GROUP BY "order_id" HAVING count(*) > 1 LIMIT 1;
SELECT 1 FROM "__xform_new__merged" WHERE "order_id" IS NULL LIMIT 1;
UPDATE "xt_analytics"."merged" AS t SET "customer" = n."customer", "amount" = n."amount"
FROM (SELECT * FROM "__xform_new__merged" WHERE "order_id" IS NOT NULL) AS n WHERE t."order_id" = n."order_id";
INSERT INTO "xt_analytics"."merged" ("order_id", "customer", "amount")
SELECT n."order_id", n."customer", n."amount" FROM (SELECT * FROM "__xform_new__merged" WHERE "order_id" IS NOT NULL) AS n
WHERE NOT EXISTS (SELECT 1 FROM "xt_analytics"."merged" AS t WHERE t."order_id" = n."order_id");
UPDATE "xt_analytics"."merged" AS t SET "customer" = n."customer", "amount" = n."amount"
FROM (SELECT * FROM "__xform_new__merged" WHERE "order_id" IS NULL) AS n WHERE coalesce(t."order_id", 0) = coalesce(n."order_id", 0) AND (t."order_id" IS NULL) = (n."order_id" IS NULL);
INSERT INTO "xt_analytics"."merged" ("order_id", "customer", "amount")
SELECT n."order_id", n."customer", n."amount" FROM (SELECT * FROM "__xform_new__merged" WHERE "order_id" IS NULL) AS n
WHERE NOT EXISTS (SELECT 1 FROM "xt_analytics"."merged" AS t WHERE coalesce(t."order_id", 0) = coalesce(n."order_id", 0) AND (t."order_id" IS NULL) = (n."order_id" IS NULL));
DROP TABLE "__xform_new__merged";
SELECT privilege_type, identity_type, identity_name FROM svv_relation_privileges WHERE namespace_name = 'xt_analytics' AND relation_name = 'merged' AND identity_name <> current_user;
COMMIT;
BEGIN;
CREATE TEMP TABLE "__xform_new__replaced" AS

select order_id, product from "xt_raw_data"."stg_orders";
SELECT a.attname AS column_name, format_type(a.atttypid, a.atttypmod) AS column_type FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = '__xform_new__replaced' AND pg_table_is_visible(c.oid) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum;
SELECT a.attname AS column_name, format_type(a.atttypid, a.atttypmod) AS column_type FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = 'replaced' AND n.nspname = 'xt_analytics' AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum;
SELECT 1 FROM "__xform_new__replaced" WHERE "order_id" IS NULL LIMIT 1;
DELETE FROM "xt_analytics"."replaced" USING (SELECT * FROM "__xform_new__replaced" WHERE "order_id" IS NOT NULL) AS n WHERE "replaced"."order_id" = n."order_id";
DELETE FROM "xt_analytics"."replaced" USING (SELECT * FROM "__xform_new__replaced" WHERE "order_id" IS NULL) AS n WHERE coalesce("replaced"."order_id", 0) = coalesce(n."order_id", 0) AND ("replaced"."order_id" IS NULL) = (n."order_id" IS NULL);
INSERT INTO "xt_analytics"."replaced" ("order_id", "product")
SELECT n."order_id", n."product" FROM "__xform_new__replaced" AS n;
DROP TABLE "__xform_new__replaced";
SELECT privilege_type, identity_type, identity_name FROM svv_relation_privileges WHERE namespace_name = 'xt_analytics' AND relation_name = 'replaced' AND identity_name <> current_user;
COMMIT;
BEGIN;
WITH RECURSIVE deps(oid, depth) AS (
SELECT r.ev_class, 1 FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
JOIN pg_class c ON c.oid = d.refobjid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE d.refclassid = 1259 AND n.nspname = 'xt_analytics' AND c.relname = 'big_spenders'
AND d.classid = 2618 AND r.ev_class <> c.oid
UNION ALL
SELECT r.ev_class, deps.depth + 1 FROM deps JOIN pg_depend d
ON d.refclassid = 1259 AND d.refobjid = deps.oid
JOIN pg_rewrite r ON r.oid = d.objid
WHERE d.classid = 2618 AND r.ev_class <> deps.oid)
SELECT n.nspname, c.relname, pg_get_viewdef(c.oid) FROM deps
JOIN pg_class c ON c.oid = deps.oid AND c.relkind = 'v'
JOIN pg_namespace n ON n.oid = c.relnamespace 
GROUP BY 1, 2, 3 ORDER BY max(deps.depth), 1, 2;
DROP VIEW "xt_analytics"."big_spenders";
CREATE OR REPLACE VIEW "xt_analytics"."big_spenders" AS

select customer from "xt_analytics"."by_customer" where total > 1000;
SELECT privilege_type, identity_type, identity_name FROM svv_relation_privileges WHERE namespace_name = 'xt_analytics' AND relation_name = 'big_spenders' AND identity_name <> current_user;
GRANT SELECT ON "xt_analytics"."big_spenders" TO ROLE "xt_rs_role";
COMMIT;
