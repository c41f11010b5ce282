-- Daily payment totals. Incremental: the first run builds every day; later runs
-- only recompute days from the latest day already in the table onwards, and the
-- merge on payment_date replaces that (possibly incomplete) day instead of
-- duplicating it.
{{ config(materialized='incremental', unique_key='payment_date', incremental_strategy='merge') }}

with payments as (

    select payment_id, order_id, payment_method, amount, payment_date
    from {{ ref('stg_payments') }}
    {% if is_incremental() %}
    where payment_date >= (select max(payment_date) from {{ this }})
    {% endif %}

)

select
    payment_date,
    count(*) as number_of_payments,
    count(distinct order_id) as number_of_orders,
    sum(amount) as total_amount,
    sum(case when payment_method = 'coupon' then amount else 0 end) as coupon_amount
from payments
group by payment_date
