-- Monthly active users: distinct users with at least one session in the month.
select
    {{ month_of('session_at') }} as month,
    count(distinct user_id) as mau
from {{ ref('stg_sessions') }}
group by 1
