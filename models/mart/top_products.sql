select
    o.product_name,
    coalesce(c.category, '미분류') as category,
    sum(o.quantity) as units,
    sum(o.amount) as revenue
from {{ ref('stg_orders') }} as o
left join {{ ref('product_categories') }} as c using (product_name)
group by all
order by revenue desc
