-- a singular test: every returned row is a failure
select * from {{ ref('daily_sales') }} where revenue < 0
