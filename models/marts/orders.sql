-- One row per order with what was paid for it, in total and per method.
-- Orders without any payment still appear, with amounts of 0.

with orders as (

    select order_id, customer_id, order_date, status
    from {{ ref('stg_orders') }}

),

order_payments as (

    select
        order_id,
        payment_count,
        credit_card_amount,
        bank_transfer_amount,
        coupon_amount,
        gift_card_amount,
        total_amount
    from {{ ref('int_order_payments') }}

)

select
    orders.order_id,
    orders.customer_id,
    orders.order_date,
    orders.status,
    coalesce(order_payments.payment_count, 0) as payment_count,
    coalesce(order_payments.credit_card_amount, 0) as credit_card_amount,
    coalesce(order_payments.bank_transfer_amount, 0) as bank_transfer_amount,
    coalesce(order_payments.coupon_amount, 0) as coupon_amount,
    coalesce(order_payments.gift_card_amount, 0) as gift_card_amount,
    coalesce(order_payments.total_amount, 0) as amount
from orders
left join order_payments
    on orders.order_id = order_payments.order_id
