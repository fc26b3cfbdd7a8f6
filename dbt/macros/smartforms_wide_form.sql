{#- One row per response of a form, one column per question (README, "Wide tables").

    A model of your project, one per form:
        -- models/onboarding_responses.sql
        {{ smartforms.smartforms_wide_form('<form id>') }}

    The columns are read from the questions (and answers) tables when the model is
    compiled, so a question added to the form is a new column on the next run, and a
    question deleted from it keeps its column while answers to it remain.
-#}

{% macro smartforms_wide_response_columns() -%}
    {{- return([
        'response_id', 'form_id', 'data_source_id', 'status', 'created_at', 'updated_at',
        'submitted_at', 'respondent_account_id', 'respondent_display_name', 'respondent_email',
        'issue_key', 'issue_summary',
    ]) -}}
{%- endmacro %}


{#- The questions of a form as the wide table gets them: current questions in form
    order, then deleted ones (answered, no longer in the form) by id. Each is a dict of
    question_id, label, type, deleted, and column (its column name). -#}
{% macro smartforms_wide_columns(form_id) -%}
    {%- set questions = ref('stg_smartforms__questions') -%}
    {%- set answers = ref('stg_smartforms__answers') -%}
    {%- set query -%}
        select question_id, label, type, 0 as deleted, position
        from {{ questions }}
        where form_id = {{ smartforms.smartforms_literal(form_id) }}
        union all
        select a.question_id, max(a.label), max(a.type), 1 as deleted, null
        from {{ answers }} a
        where a.form_id = {{ smartforms.smartforms_literal(form_id) }}
          and not exists (
              select 1 from {{ questions }} q
              where q.form_id = a.form_id and q.question_id = a.question_id
          )
        group by a.question_id
        order by 4, 5, 1
    {%- endset -%}
    {%- if not execute -%}{{- return([]) -}}{%- endif -%}
    {%- set rows = run_query(query).rows -%}
    {%- set pairs = [] -%}
    {%- for row in rows -%}{%- do pairs.append((row[0], row[1])) -%}{%- endfor -%}
    {%- set names = smartforms.smartforms_column_names(
            pairs, taken=smartforms.smartforms_wide_response_columns()) -%}
    {%- set columns = [] -%}
    {%- for row in rows -%}
        {%- do columns.append({
            'question_id': row[0], 'label': row[1], 'type': (row[2] or 'text') | lower,
            'deleted': row[3] == 1, 'column': names[loop.index0]}) -%}
    {%- endfor -%}
    {{- return(columns) -}}
{%- endmacro %}


{#- The typed value of an answer (value_text, or the attachments' file names). -#}
{% macro smartforms_wide_value(expr, question_type) -%}
    {%- if question_type in ('number', 'rating') -%}{{ smartforms.smartforms_try_number(expr) }}
    {%- elif question_type == 'date' -%}{{ smartforms.smartforms_try_date(expr) }}
    {%- elif question_type == 'datetime' -%}{{ smartforms.smartforms_parse_instant(expr) }}
    {%- elif question_type == 'checkbox' -%}{{ smartforms.smartforms_try_boolean(expr) }}
    {%- else -%}{{ expr }}
    {%- endif -%}
{%- endmacro %}


{% macro smartforms_wide_form(form_id) -%}
    {{ smartforms.smartforms_wide_form_sql(form_id, smartforms.smartforms_wide_columns(form_id)) }}
{%- endmacro %}


{#- dbt run-operation smartforms_print_wide_sql --args '{form_id: f, columns: [{question_id: q1,
    column: budget, type: number}, ...]}' prints the SQL of a wide model for those columns,
    without reading the warehouse: how the SQL is checked for a warehouse that cannot be
    reached (Snowflake in the tests). -#}
{% macro smartforms_print_wide_sql(form_id, columns) -%}
    {%- do print(smartforms.smartforms_wide_form_sql(form_id, columns)) -%}
{%- endmacro %}


{% macro smartforms_wide_form_sql(form_id, columns) -%}
    {%- set form = smartforms.smartforms_literal(form_id) %}
with responses as (
    select * from {{ ref('stg_smartforms__responses') }}
    where form_id = {{ form }}
),

files as (
    select
        response_id,
        question_id,
        {{ smartforms.smartforms_string_agg('file_name', 'file_name, attachment_id') }} as file_names
    from {{ ref('stg_smartforms__attachments') }}
    where form_id = {{ form }}
    group by response_id, question_id
),

answers as (
    select
        coalesce(a.response_id, f.response_id) as response_id,
        coalesce(a.question_id, f.question_id) as question_id,
        {#- An attachment question's value is null; its files are what was answered. #}
        coalesce(a.value_text, f.file_names) as value_text
    from (
        select * from {{ ref('stg_smartforms__answers') }}
        where form_id = {{ form }}
    ) a
    full outer join files f
        on f.response_id = a.response_id and f.question_id = a.question_id
),

{#- One text value per question first (a response answers a question at most once),
    cast after: a cast on the pivoted text runs once per cell, not per answer. #}
pivoted as (
    select
        r.response_id
        {%- for column in columns %},
        max(case when a.question_id = {{ smartforms.smartforms_literal(column.question_id) }} then a.value_text end) as {{ column.column }}
        {%- endfor %}
    from responses r
    left join answers a on a.response_id = r.response_id
    group by r.response_id
)

select
    {%- for name in smartforms.smartforms_wide_response_columns() %}
    r.{{ name }}{{ ',' if not loop.last }}
    {%- endfor %}
    {%- for column in columns %},
    {{ smartforms.smartforms_wide_value('p.' ~ column.column, column.type) }} as {{ column.column }}
    {%- endfor %}
from responses r
join pivoted p on p.response_id = r.response_id
{%- endmacro %}
