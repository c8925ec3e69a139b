{% macro krw(expr) -%}
    cast(round({{ expr }}, 0) as bigint)
{%- endmacro %}
