-- connection 1
SELECT version();
-- connection 2
SELECT * FROM (
select * from "xt_raw_data"."orders"
) AS q LIMIT 0;
SELECT * FROM (
SELECT a.attname AS column_name, format_type(a.atttypid, a.atttypmod) AS column_type FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = 'orders' AND n.nspname = 'xt_raw_data' AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
) AS q;
SELECT * FROM (
SELECT count(*), count(*) - count("order_id"), count(DISTINCT "order_id"), min("order_id"), max("order_id"), sum("order_id"), avg("order_id"), count(*) - count("customer"), count(DISTINCT "customer"), min("customer"), max("customer"), min(length("customer")), max(length("customer")), count(*) - count("amount"), count(DISTINCT "amount"), min("amount"), max("amount"), sum("amount"), avg("amount"), count(*) - count("product"), count(DISTINCT "product"), min("product"), max("product"), min(length("product")), max(length("product")), count(*) - count("ordered_at"), count(DISTINCT "ordered_at"), min("ordered_at"), max("ordered_at") FROM "xt_raw_data"."orders"
) AS q LIMIT 1;
SELECT * FROM (
SELECT count(*) FROM (SELECT 1 FROM "xt_raw_data"."orders" GROUP BY "order_id" HAVING count(*) > 1) AS d
) AS q LIMIT 1;
BEGIN; DECLARE xform_rows CURSOR FOR
SELECT CAST("order_id" AS VARCHAR(65535)), CAST("customer" AS VARCHAR(65535)), CAST("amount" AS VARCHAR(65535)), CAST("product" AS VARCHAR(65535)), CAST("ordered_at" AS VARCHAR(65535)) FROM "xt_raw_data"."orders" ORDER BY CAST("order_id" AS VARCHAR(65535)) NULLS FIRST;
FETCH FORWARD 10000 FROM xform_rows;
ROLLBACK;
