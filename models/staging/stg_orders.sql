-- One row per order. Orders before the project's start_date var are left out,
-- so the whole project can be rebuilt for a shorter window with --vars.

with source as (

    select id, customer_id, order_date, status
    from {{ ref('raw_orders') }}

),

renamed as (

    select
        id as order_id,
        customer_id,
        cast(order_date as date) as order_date,
        status
    from source

)

select order_id, customer_id, order_date, status
from renamed
where order_date >= cast('{{ var("start_date") }}' as date)
