{# A custom generic test: every row where the column is not positive is a failure. #}
{% test positive(model, column_name) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} <= 0
{% endtest %}
