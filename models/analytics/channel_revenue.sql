{% set channels = ['Google', 'Naver', 'Kakao', 'Youtube', 'Instagram'] %}
select
    {{ month_of('session_at') }} as month,
    {% for ch in channels -%}
    {{ krw("sum(case when channel = '" ~ ch ~ "' then revenue else 0 end)") }} as {{ ch | lower }}_revenue,
    {% endfor -%}
    {{ krw('sum(revenue)') }} as total_revenue
from {{ ref('session_orders') }}
group by 1
