-- One row per session: who, through which channel, when.
select
    c.sessionid as session_id,
    c.userid as user_id,
    c.channel,
    t.ts as session_at
from {{ ref('user_session_channel') }} as c
join {{ ref('session_timestamp') }} as t on t.sessionid = c.sessionid
where {{ since_start('t.ts') }}
