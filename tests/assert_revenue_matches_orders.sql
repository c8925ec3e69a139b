-- Singular test across layers: the mart's revenue must add up to the orders it came from.
with mart as (select sum(revenue) as revenue from {{ ref('top_products') }}),
     orders as (select sum(amount) as revenue from {{ ref('stg_orders') }})
select mart.revenue as mart_revenue, orders.revenue as orders_revenue
from mart, orders
where mart.revenue <> orders.revenue
