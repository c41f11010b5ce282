-- One row per payment. Amounts are converted from cents to dollars here,
-- once, with the cents_to_dollars macro, so every later model speaks dollars.

with source as (

    select id, order_id, payment_method, amount, created_at
    from {{ ref('raw_payments') }}

),

renamed as (

    select
        id as payment_id,
        order_id,
        payment_method,
        {{ cents_to_dollars('amount') }} as amount,
        cast(created_at as date) as payment_date
    from source

)

select payment_id, order_id, payment_method, amount, payment_date
from renamed
