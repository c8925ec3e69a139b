-- One row per day and page. Built in daily batches: a normal run rebuilds today and
-- yesterday; `xform build -s daily_traffic --start 2023-03-01 --end 2023-03-03` backfills
-- exactly those days, and re-running it gives the same table.
{{ config(
    materialized='incremental',
    incremental_strategy='microbatch',
    event_time='traffic_date',
    batch_size='day',
    begin='2023-03-01'
) }}
select
    cast(event_at as date) as traffic_date,
    page,
    count(*) as views,
    count(distinct user_id) as visitors
from {{ ref('fct_page_views') }}
group by all
