select
    order_id,
    userid as user_id,
    sessionid as session_id,
    product_name,
    quantity,
    amount,
    ordered_at
from {{ ref('orders') }}
