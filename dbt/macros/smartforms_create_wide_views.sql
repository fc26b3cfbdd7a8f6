{#- dbt run-operation smartforms_create_wide_views [--args '{prefix: ..., schema: ...}']

    One view per form of the forms table, named <prefix><form name as a column name>
    (unique; q_<form id> style fallback for a name with no Latin letter or digit), in
    the target schema (or `schema`). Each view is the SQL of smartforms_wide_form as
    of now: run it again after questions changed (Meltano: after `dbt-...:run`). A
    view of a form renamed since keeps its old name until dropped.
-#}
{% macro smartforms_create_wide_views(prefix='wide_', schema=none) -%}
    {%- if not execute -%}{{ return([]) }}{%- endif -%}
    {%- set forms = run_query(
        'select form_id, name from ' ~ ref('stg_smartforms__forms') ~ ' order by form_id').rows -%}
    {%- set pairs = [] -%}
    {%- for form in forms -%}{%- do pairs.append((form[0], form[1])) -%}{%- endfor -%}
    {#- 63 characters in all, prefix included: the same limit as the columns. -#}
    {%- set names = smartforms.smartforms_column_names(pairs) -%}
    {%- set target_schema = schema or target.schema -%}
    {%- do adapter.create_schema(api.Relation.create(database=target.database, schema=target_schema)) -%}
    {%- set created = [] -%}
    {%- for form in forms -%}
        {%- set view = api.Relation.create(
            database=target.database, schema=target_schema,
            identifier=(prefix ~ names[loop.index0])[:63], type='view') -%}
        {%- do run_query(smartforms.smartforms_create_view_sql(view, smartforms.smartforms_wide_form(form[0]))) -%}
        {%- do log('smartforms: ' ~ view ~ ' (form ' ~ form[0] ~ ')', info=true) -%}
        {%- do created.append(view.identifier) -%}
    {%- endfor -%}
    {{ return(created) }}
{%- endmacro %}


{% macro smartforms_create_view_sql(relation, sql) -%}
    {{ return(adapter.dispatch('smartforms_create_view_sql', 'smartforms')(relation, sql)) }}
{%- endmacro %}

{#- PostgreSQL cannot "create or replace" a view whose columns changed (a question
    deleted from the middle): drop it first. -#}
{% macro default__smartforms_create_view_sql(relation, sql) -%}
    drop view if exists {{ relation }};
    create view {{ relation }} as {{ sql }}
{%- endmacro %}

{% macro snowflake__smartforms_create_view_sql(relation, sql) -%}
    create or replace view {{ relation }} as {{ sql }}
{%- endmacro %}
