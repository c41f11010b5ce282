-- Every version of each customer's contact details: when a name or email changes in
-- raw_customers, `sqlflow snapshot` (or build) closes the old row and adds a new one.
{% snapshot customers_snapshot %}
{{ config(
    unique_key='customer_id',
    strategy='check',
    check_cols=['first_name', 'last_name', 'email'],
    hard_deletes='invalidate',
) }}
select customer_id, first_name, last_name, email
from {{ ref('stg_customers') }}
{% endsnapshot %}
