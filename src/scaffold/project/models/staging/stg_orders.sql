select
    order_id,
    customer_name,
    product_name,
    cast(amount as decimal(12, 0)) as amount,
    cast(ordered_at as date) as order_date
from {{ ref('raw_orders') }}
