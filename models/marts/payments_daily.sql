-- Daily payment totals. Incremental: the first run builds every day; later runs
-- only recompute days from the latest day already in the table onwards, and the
-- merge on payment_date replaces that (possibly incomplete) day instead of
-- duplicating it. On Spark, whose plain tables have no MERGE, each day is a partition and a run
-- overwrites the partitions of the days it recomputed instead: the same result.
{{ config(
    materialized='incremental',
    unique_key='payment_date',
    incremental_strategy='insert_overwrite' if target.type == 'spark' else 'merge',
    partition_by='payment_date',
) }}

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
    -- cast: the contract says decimal(38, 2), and not every warehouse sums to that type
    cast(sum(amount) as decimal(38, 2)) as total_amount,
    cast(sum(case when payment_method = 'coupon' then amount else 0 end) as decimal(38, 2)) as coupon_amount
from payments
group by payment_date
