-- The KPI sheet analysts read every month.
select
    m.month,
    m.mau,
    r.total_revenue,
    {{ krw('r.total_revenue / nullif(m.mau, 0)') }} as revenue_per_user
from {{ ref('mau_summary') }} as m
left join {{ ref('channel_revenue') }} as r on r.month = m.month
