{# Truncates a timestamp expression to the first day of its month. #}
{% macro month_of(expr) -%}
    cast(date_trunc('month', {{ expr }}) as date)
{%- endmacro %}

{# Keeps rows on or after the project's start_date var. #}
{% macro since_start(expr) -%}
    {{ expr }} >= cast('{{ var("start_date") }}' as timestamp)
{%- endmacro %}
