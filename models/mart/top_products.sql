select
    product_name,
    sum(quantity) as units,
    sum(amount) as revenue
from {{ ref('stg_orders') }}
group by product_name
order by revenue desc
