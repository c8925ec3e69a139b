-- connection 1
SELECT version();
-- connection 2
SELECT * FROM (
select * from "xt_analytics"."merged"
) AS q LIMIT 0;
SELECT * FROM (
select * from "xt_analytics"."merged"
) AS q LIMIT 0;
SELECT * FROM (
SELECT a.attname AS column_name, format_type(a.atttypid, a.atttypmod) AS column_type FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = 'merged' AND n.nspname = 'xt_analytics' AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
) AS q;
SELECT * FROM (
SELECT a.attname AS column_name, format_type(a.atttypid, a.atttypmod) AS column_type FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = 'merged' AND n.nspname = 'xt_analytics' AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
) AS q;
SELECT * FROM (
SELECT count(*), count(*) - count("order_id"), count(DISTINCT "order_id"), min("order_id"), max("order_id"), sum("order_id"), avg("order_id"), count(*) - count("customer"), count(DISTINCT "customer"), min("customer"), max("customer"), min(length("customer")), max(length("customer")), count(*) - count("amount"), count(DISTINCT "amount"), min("amount"), max("amount"), sum("amount"), avg("amount") FROM "xt_analytics"."merged"
) AS q LIMIT 1;
SELECT * FROM (
SELECT count(*), count(*) - count("order_id"), count(DISTINCT "order_id"), min("order_id"), max("order_id"), sum("order_id"), avg("order_id"), count(*) - count("customer"), count(DISTINCT "customer"), min("customer"), max("customer"), min(length("customer")), max(length("customer")), count(*) - count("amount"), count(DISTINCT "amount"), min("amount"), max("amount"), sum("amount"), avg("amount") FROM "xt_analytics"."merged"
) AS q LIMIT 1;
SELECT * FROM (
SELECT count(*) FROM (SELECT 1 FROM "xt_analytics"."merged" GROUP BY "order_id" HAVING count(*) > 1) AS d
) AS q LIMIT 1;
SELECT * FROM (
SELECT count(*) FROM (SELECT 1 FROM "xt_analytics"."merged" GROUP BY "order_id" HAVING count(*) > 1) AS d
) AS q LIMIT 1;
SELECT * FROM (
SELECT __xform_diff, count(*) FROM (SELECT CASE WHEN b.__xform_b IS NULL THEN 'only_a' WHEN a.__xform_a IS NULL THEN 'only_b' ELSE 'changed' END AS __xform_diff, coalesce(a."order_id", b."order_id") AS "order_id", a."customer" AS "a.customer", b."customer" AS "b.customer", a."amount" AS "a.amount", b."amount" AS "b.amount"
FROM (SELECT *, true AS __xform_a FROM "xt_analytics"."merged") AS a
FULL OUTER JOIN (SELECT *, true AS __xform_b FROM "xt_analytics"."merged") AS b ON coalesce(CAST(a."order_id" AS VARCHAR(65535)), '') = coalesce(CAST(b."order_id" AS VARCHAR(65535)), '') AND (a."order_id" IS NULL) = (b."order_id" IS NULL)
WHERE a.__xform_a IS NULL OR b.__xform_b IS NULL OR (coalesce(a."customer" <> b."customer", false) OR (a."customer" IS NULL) <> (b."customer" IS NULL)) OR (coalesce(a."amount" <> b."amount", false) OR (a."amount" IS NULL) <> (b."amount" IS NULL))) AS d GROUP BY 1
) AS q;
