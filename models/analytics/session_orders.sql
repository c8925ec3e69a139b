{{ config(materialized='ephemeral') }}
-- Sessions with what was ordered in them (inlined as a CTE where it is used).
select
    s.session_id,
    s.user_id,
    s.channel,
    s.session_at,
    coalesce(sum(o.amount), 0) as revenue
from {{ ref('stg_sessions') }} as s
left join {{ ref('stg_orders') }} as o on o.session_id = s.session_id
group by 1, 2, 3, 4
