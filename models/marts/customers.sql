-- One row per customer, including those who never ordered.
-- lifetime_value counts what a customer paid, minus orders they returned.

with customers as (

    select customer_id, first_name, last_name, email, signed_up_at
    from {{ ref('stg_customers') }}

),

customer_orders as (

    select customer_id, first_order_date, most_recent_order_date, number_of_orders, total_paid
    from {{ ref('int_customer_orders') }}

),

customer_value as (

    select
        customer_id,
        sum(case when status = 'returned' then 0 else amount end) as lifetime_value
    from {{ ref('orders') }}
    group by customer_id

)

select
    customers.customer_id,
    customers.first_name,
    customers.last_name,
    customers.email,
    customers.signed_up_at,
    customer_orders.first_order_date,
    customer_orders.most_recent_order_date,
    coalesce(customer_orders.number_of_orders, 0) as number_of_orders,
    coalesce(customer_orders.total_paid, 0) as total_paid,
    coalesce(customer_value.lifetime_value, 0) as lifetime_value
from customers
left join customer_orders
    on customers.customer_id = customer_orders.customer_id
left join customer_value
    on customers.customer_id = customer_value.customer_id
