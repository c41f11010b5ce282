-- One row per customer, straight from the raw seed with tidy names and types.
-- Staging models only rename, cast and clean: no joins, no business logic.

with source as (

    select id, first_name, last_name, email, created_at
    from {{ ref('raw_customers') }}

),

renamed as (

    select
        id as customer_id,
        first_name,
        last_name,
        lower(email) as email,                  -- some raw emails have odd casing
        cast(created_at as date) as signed_up_at
    from source

)

select customer_id, first_name, last_name, email, signed_up_at
from renamed
