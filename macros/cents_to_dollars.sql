-- Money arrives in integer cents; we report it in dollars.
-- Casting to a fixed-point decimal keeps sums exact (no 0.30000000000000004).
{% macro cents_to_dollars(column_name, scale=2) -%}
    cast({{ column_name }} / 100.0 as decimal(18, {{ scale }}))
{%- endmacro %}
