-- Order history rolled up to one row per customer who has ordered at least once.
-- Customers without orders appear only in the customers mart.

with orders as (

    select order_id, customer_id, order_date
    from {{ ref('stg_orders') }}

),

order_payments as (

    select order_id, total_amount
    from {{ ref('int_order_payments') }}

)

select
    orders.customer_id,
    min(orders.order_date) as first_order_date,
    max(orders.order_date) as most_recent_order_date,
    count(*) as number_of_orders,
    sum(coalesce(order_payments.total_amount, 0)) as total_paid
from orders
left join order_payments
    on orders.order_id = order_payments.order_id
group by orders.customer_id
