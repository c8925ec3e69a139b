{#- xform's implementations of dbt's cross-database macros (`dbt.dateadd(...)`, or by name).
    Each dispatches like dbt's: a project or package may override `<adapter>__<name>` through
    `dispatch:`; the adapter names tried are the warehouse's, then `default`. -#}

{#- A data test keeps its failing rows (`store_failures`, or `--store-failures`). -#}
{%- macro should_store_failures() -%}{{ return(config.get('store_failures') or flags.STORE_FAILURES) }}{%- endmacro -%}

{%- macro limit_zero() -%}{{ return(adapter.dispatch('limit_zero', 'dbt')()) }}{%- endmacro -%}
{%- macro default__limit_zero() -%}{{ return('limit 0') }}{%- endmacro -%}

{%- macro type_string() -%}{{ return(adapter.dispatch('type_string', 'dbt')()) }}{%- endmacro -%}
{%- macro default__type_string() -%}varchar{%- endmacro -%}
{%- macro postgres__type_string() -%}text{%- endmacro -%}
{%- macro redshift__type_string() -%}varchar{%- endmacro -%}

{%- macro type_timestamp() -%}{{ return(adapter.dispatch('type_timestamp', 'dbt')()) }}{%- endmacro -%}
{%- macro default__type_timestamp() -%}timestamp{%- endmacro -%}

{%- macro type_float() -%}{{ return(adapter.dispatch('type_float', 'dbt')()) }}{%- endmacro -%}
{%- macro default__type_float() -%}float{%- endmacro -%}

{%- macro type_numeric() -%}{{ return(adapter.dispatch('type_numeric', 'dbt')()) }}{%- endmacro -%}
{%- macro default__type_numeric() -%}numeric(28,6){%- endmacro -%}

{%- macro type_bigint() -%}{{ return(adapter.dispatch('type_bigint', 'dbt')()) }}{%- endmacro -%}
{%- macro default__type_bigint() -%}bigint{%- endmacro -%}

{%- macro type_int() -%}{{ return(adapter.dispatch('type_int', 'dbt')()) }}{%- endmacro -%}
{%- macro default__type_int() -%}integer{%- endmacro -%}

{%- macro type_boolean() -%}{{ return(adapter.dispatch('type_boolean', 'dbt')()) }}{%- endmacro -%}
{%- macro default__type_boolean() -%}boolean{%- endmacro -%}

{%- macro current_timestamp() -%}{{ return(adapter.dispatch('current_timestamp', 'dbt')()) }}{%- endmacro -%}
{%- macro default__current_timestamp() -%}now(){%- endmacro -%}
{%- macro redshift__current_timestamp() -%}getdate(){%- endmacro -%}

{%- macro cast(field, type) -%}{{ return(adapter.dispatch('cast', 'dbt')(field, type)) }}{%- endmacro -%}
{%- macro default__cast(field, type) -%}cast({{ field }} as {{ type }}){%- endmacro -%}

{%- macro safe_cast(field, type) -%}{{ return(adapter.dispatch('safe_cast', 'dbt')(field, type)) }}{%- endmacro -%}
{%- macro default__safe_cast(field, type) -%}cast({{ field }} as {{ type }}){%- endmacro -%}
{%- macro duckdb__safe_cast(field, type) -%}try_cast({{ field }} as {{ type }}){%- endmacro -%}

{%- macro dateadd(datepart, interval, from_date_or_timestamp) -%}
{{ return(adapter.dispatch('dateadd', 'dbt')(datepart, interval, from_date_or_timestamp)) }}
{%- endmacro -%}
{%- macro default__dateadd(datepart, interval, from_date_or_timestamp) -%}
{{ from_date_or_timestamp }} + ((interval '1 {{ datepart }}') * ({{ interval }}))
{%- endmacro -%}
{%- macro duckdb__dateadd(datepart, interval, from_date_or_timestamp) -%}
date_add({{ from_date_or_timestamp }}, interval ({{ interval }}) {{ datepart }})
{%- endmacro -%}
{%- macro redshift__dateadd(datepart, interval, from_date_or_timestamp) -%}
dateadd({{ datepart }}, {{ interval }}, {{ from_date_or_timestamp }})
{%- endmacro -%}

{%- macro datediff(first_date, second_date, datepart) -%}
{{ return(adapter.dispatch('datediff', 'dbt')(first_date, second_date, datepart)) }}
{%- endmacro -%}
{%- macro default__datediff(first_date, second_date, datepart) -%}
{%- if datepart == 'week' -%}{{ dbt.xform_weeks_between(first_date, second_date) }}
{%- else -%}date_diff('{{ datepart }}', cast({{ first_date }} as timestamp), cast({{ second_date }} as timestamp))
{%- endif -%}
{%- endmacro -%}
{#- Weeks as dbt counts them: the Sundays crossed (a week starts on Sunday). -#}
{%- macro xform_weeks_between(first_date, second_date) -%}
cast((cast(date_trunc('week', cast({{ second_date }} as date) + 1) as date) - cast(date_trunc('week', cast({{ first_date }} as date) + 1) as date)) / 7 as bigint)
{%- endmacro -%}
{%- macro redshift__datediff(first_date, second_date, datepart) -%}
datediff({{ datepart }}, {{ first_date }}, {{ second_date }})
{%- endmacro -%}
{#- PostgreSQL has no date_diff: count the boundaries crossed, as date_diff does. -#}
{%- macro postgres__datediff(first_date, second_date, datepart) -%}
{%- set a, b = 'cast(' ~ first_date ~ ' as timestamp)', 'cast(' ~ second_date ~ ' as timestamp)' -%}
{%- set years = "(date_part('year', " ~ b ~ ") - date_part('year', " ~ a ~ "))" -%}
{%- set days = '(cast(' ~ b ~ ' as date) - cast(' ~ a ~ ' as date))' -%}
{%- set hours = '(' ~ days ~ " * 24 + date_part('hour', " ~ b ~ ") - date_part('hour', " ~ a ~ '))' -%}
{%- set minutes = '(' ~ hours ~ " * 60 + date_part('minute', " ~ b ~ ") - date_part('minute', " ~ a ~ '))' -%}
{%- if datepart == 'year' -%} cast({{ years }} as bigint)
{%- elif datepart == 'quarter' -%} cast({{ years }} * 4 + date_part('quarter', {{ b }}) - date_part('quarter', {{ a }}) as bigint)
{%- elif datepart == 'month' -%} cast({{ years }} * 12 + date_part('month', {{ b }}) - date_part('month', {{ a }}) as bigint)
{%- elif datepart == 'week' -%} {{ dbt.xform_weeks_between(first_date, second_date) }}
{%- elif datepart == 'day' -%} cast({{ days }} as bigint)
{%- elif datepart == 'hour' -%} cast({{ hours }} as bigint)
{%- elif datepart == 'minute' -%} cast({{ minutes }} as bigint)
{%- elif datepart == 'second' -%} cast({{ minutes }} * 60 + floor(date_part('second', {{ b }})) - floor(date_part('second', {{ a }})) as bigint)
{%- else -%}{{ exceptions.raise_compiler_error("datediff: unsupported datepart " ~ datepart) }}
{%- endif -%}
{%- endmacro -%}

{%- macro date_trunc(datepart, date) -%}{{ return(adapter.dispatch('date_trunc', 'dbt')(datepart, date)) }}{%- endmacro -%}
{%- macro default__date_trunc(datepart, date) -%}date_trunc('{{ datepart }}', {{ date }}){%- endmacro -%}

{%- macro last_day(date, datepart) -%}{{ return(adapter.dispatch('last_day', 'dbt')(date, datepart)) }}{%- endmacro -%}
{%- macro default__last_day(date, datepart) -%}
cast({{ dbt.dateadd('day', '-1', dbt.dateadd(datepart, '1', dbt.date_trunc(datepart, date))) }} as date)
{%- endmacro -%}

{%- macro date_spine(datepart, start_date, end_date) -%}
{{ return(adapter.dispatch('date_spine', 'dbt')(datepart, start_date, end_date)) }}
{%- endmacro -%}
{#- Every `datepart` from start_date up to (not including) end_date, without asking the
    warehouse how many there are first. -#}
{%- macro default__date_spine(datepart, start_date, end_date) -%}
select date_{{ datepart }} from (
    select cast(spine as timestamp) as date_{{ datepart }}
    from generate_series(cast({{ start_date }} as timestamp), cast({{ end_date }} as timestamp), interval '1 {{ datepart }}') as spine_series(spine)
) as spine
where date_{{ datepart }} < cast({{ end_date }} as timestamp)
{%- endmacro -%}

{%- macro generate_series(upper_bound) -%}{{ return(adapter.dispatch('generate_series', 'dbt')(upper_bound)) }}{%- endmacro -%}
{%- macro default__generate_series(upper_bound) -%}
select generated_number from generate_series(1, {{ upper_bound }}) as series(generated_number)
{%- endmacro -%}

{%- macro concat(fields) -%}{{ return(adapter.dispatch('concat', 'dbt')(fields)) }}{%- endmacro -%}
{%- macro default__concat(fields) -%}concat({{ fields | join(', ') }}){%- endmacro -%}
{%- macro postgres__concat(fields) -%}{{ fields | join(' || ') }}{%- endmacro -%}

{%- macro hash(field) -%}{{ return(adapter.dispatch('hash', 'dbt')(field)) }}{%- endmacro -%}
{%- macro default__hash(field) -%}md5(cast({{ field }} as {{ dbt.type_string() }})){%- endmacro -%}

{%- macro listagg(measure, delimiter_text="','", order_by_clause=none, limit_num=none) -%}
{{ return(adapter.dispatch('listagg', 'dbt')(measure, delimiter_text, order_by_clause, limit_num)) }}
{%- endmacro -%}
{%- macro default__listagg(measure, delimiter_text, order_by_clause, limit_num) -%}
{%- if limit_num -%}
array_to_string((array_agg({{ measure }}{% if order_by_clause %} {{ order_by_clause }}{% endif %}))[1:{{ limit_num }}], {{ delimiter_text }})
{%- else -%}
string_agg({{ measure }}, {{ delimiter_text }}{% if order_by_clause %} {{ order_by_clause }}{% endif %})
{%- endif -%}
{%- endmacro -%}
{%- macro redshift__listagg(measure, delimiter_text, order_by_clause, limit_num) -%}
{%- if limit_num -%}{{ exceptions.raise_compiler_error("listagg with limit_num is not available on Redshift") }}{%- endif -%}
listagg({{ measure }}, {{ delimiter_text }}){% if order_by_clause %} within group ({{ order_by_clause }}){% endif %}
{%- endmacro -%}

{%- macro split_part(string_text, delimiter_text, part_number) -%}
{{ return(adapter.dispatch('split_part', 'dbt')(string_text, delimiter_text, part_number)) }}
{%- endmacro -%}
{%- macro default__split_part(string_text, delimiter_text, part_number) -%}
split_part({{ string_text }}, {{ delimiter_text }}, {{ part_number }})
{%- endmacro -%}

{%- macro any_value(expression) -%}{{ return(adapter.dispatch('any_value', 'dbt')(expression)) }}{%- endmacro -%}
{%- macro default__any_value(expression) -%}any_value({{ expression }}){%- endmacro -%}
{%- macro postgres__any_value(expression) -%}min({{ expression }}){%- endmacro -%}

{%- macro bool_or(expression) -%}{{ return(adapter.dispatch('bool_or', 'dbt')(expression)) }}{%- endmacro -%}
{%- macro default__bool_or(expression) -%}bool_or({{ expression }}){%- endmacro -%}

{%- macro cast_bool_to_text(field) -%}{{ return(adapter.dispatch('cast_bool_to_text', 'dbt')(field)) }}{%- endmacro -%}
{%- macro default__cast_bool_to_text(field) -%}cast({{ field }} as {{ dbt.type_string() }}){%- endmacro -%}

{%- macro escape_single_quotes(expression) -%}{{ return(adapter.dispatch('escape_single_quotes', 'dbt')(expression)) }}{%- endmacro -%}
{%- macro default__escape_single_quotes(expression) -%}{{ expression | replace("'", "''") }}{%- endmacro -%}

{%- macro string_literal(value) -%}{{ return(adapter.dispatch('string_literal', 'dbt')(value)) }}{%- endmacro -%}
{%- macro default__string_literal(value) -%}'{{ value }}'{%- endmacro -%}

{%- macro except() -%}{{ return(adapter.dispatch('except', 'dbt')()) }}{%- endmacro -%}
{%- macro default__except() -%}except{%- endmacro -%}

{%- macro intersect() -%}{{ return(adapter.dispatch('intersect', 'dbt')()) }}{%- endmacro -%}
{%- macro default__intersect() -%}intersect{%- endmacro -%}

{%- macro position(substring_text, string_text) -%}
{{ return(adapter.dispatch('position', 'dbt')(substring_text, string_text)) }}
{%- endmacro -%}
{%- macro default__position(substring_text, string_text) -%}position({{ substring_text }} in {{ string_text }}){%- endmacro -%}

{%- macro replace(field, old_chars, new_chars) -%}
{{ return(adapter.dispatch('replace', 'dbt')(field, old_chars, new_chars)) }}
{%- endmacro -%}
{%- macro default__replace(field, old_chars, new_chars) -%}replace({{ field }}, {{ old_chars }}, {{ new_chars }}){%- endmacro -%}

{%- macro right(string_text, length_expression) -%}
{{ return(adapter.dispatch('right', 'dbt')(string_text, length_expression)) }}
{%- endmacro -%}
{%- macro default__right(string_text, length_expression) -%}right({{ string_text }}, {{ length_expression }}){%- endmacro -%}

{%- macro length(expression) -%}{{ return(adapter.dispatch('length', 'dbt')(expression)) }}{%- endmacro -%}
{%- macro default__length(expression) -%}length({{ expression }}){%- endmacro -%}
