-- Fed every hour: each run merges the events loaded since the last one (a re-delivered
-- event replaces its earlier copy). `xform build --full-refresh` rebuilds it from all files.
{{ config(
    materialized='incremental',
    unique_key='event_id',
    on_schema_change='append_new_columns'
) }}
select
    event_id,
    user_id,
    page,
    event_at,
    date_trunc('hour', event_at) as event_hour,
    loaded_at,
    dt as load_date
from {{ source('shop_events', 'page_views') }}
{% if is_incremental() %}
where loaded_at > (select max(loaded_at) from {{ this }})
{% endif %}
