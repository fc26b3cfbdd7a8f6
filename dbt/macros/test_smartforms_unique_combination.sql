{#- A composite primary key is unique (dbt's built-in `unique` takes one column, and this
    package depends on no other package). -#}
{% test smartforms_unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as copies
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
