-- A singular test: a query returning the rows that break a rule; it passes when it returns none.
-- Every dollar paid must be counted in exactly one order.
select orders.total, payments.total
from (select sum(amount) as total from {{ ref('orders') }}) as orders
cross join (select sum(amount) as total from {{ ref('stg_payments') }}) as payments
where orders.total != payments.total
