{#- xform's built-in generic tests, in dbt's shape: each returns the rows that fail.
    A project may define a test of the same name in macros/ or tests/generic/ to replace one. -#}

{% test not_null(model, column_name) -%}
select *
from {{ model }}
where {{ column_name }} is null
{% endtest %}

{% test unique(model, column_name) -%}
select {{ column_name }} as unique_field, count(*) as n_records
from {{ model }}
where {{ column_name }} is not null
group by {{ column_name }}
having count(*) > 1
{% endtest %}

{% test accepted_values(model, column_name, values, quote=true) -%}
with all_values as (
    select {{ column_name }} as value_field, count(*) as n_records
    from {{ model }}
    group by {{ column_name }}
)
select value_field, n_records
from all_values
where value_field not in (
    {%- for v in values %}
    {%- if quote %}'{{ v | string | replace("'", "''") }}'{% else %}{{ v }}{% endif %}{{ ", " if not loop.last }}
    {%- endfor -%}
)
{% endtest %}

{% test relationships(model, column_name, to, field) -%}
with child as (
    select {{ column_name }} as from_field
    from {{ model }}
    where {{ column_name }} is not null
),
parent as (
    select {{ field }} as to_field
    from {{ to }}
)
select from_field
from child
left join parent on child.from_field = parent.to_field
where parent.to_field is null
{% endtest %}

{% test unique_combination_of_columns(model, combination_of_columns) -%}
select {{ combination_of_columns | join(", ") }}, count(*) as n_records
from {{ model }}
group by {{ combination_of_columns | join(", ") }}
having count(*) > 1
{% endtest %}

{% test expression_is_true(model, expression, column_name=none) -%}
select *
from {{ model }}
where not ({% if column_name %}{{ column_name }} {% endif %}{{ expression }})
{% endtest %}

{% test row_count(model, min=none, max=none) -%}
select count(*) as row_count
from {{ model }}
having {% if min is not none %}count(*) < {{ min }}{% endif %}
{%- if min is not none and max is not none %} or {% endif %}
{%- if max is not none %}count(*) > {{ max }}{% endif %}
{%- if min is none and max is none %}false{% endif %}
{% endtest %}
