{#- The body of a staging model: one source table, typed, its newest row per primary
    key, soft-deleted rows left out.

    columns: (output name, kind[, source column]) with kind one of text, timestamp,
    bigint, boolean, json. A source column the table lacks (deselected in the catalog,
    or not written by the target) becomes a typed null, so one missing column does not
    break every model downstream.
    keys: the primary key (output names). newest: the output column ordering versions
    of a row (updated_at...), before the load metadata (_sdc_batched_at...).
-#}
{% macro smartforms_staged(table, columns, keys, newest=none) -%}
    {%- set relation = source('smartforms', table) -%}
    {%- set loaded = {} -%}
    {%- if execute -%}
        {%- for column in adapter.get_columns_in_relation(relation) -%}
            {%- do loaded.update({column.name | lower: column}) -%}
        {%- endfor -%}
    {%- endif -%}
    {%- set order_by = [] -%}
    {%- if newest -%}{%- do order_by.append(newest ~ ' desc nulls last') -%}{%- endif -%}
    {%- for meta in ['_sdc_batched_at', '_sdc_extracted_at', '_sdc_table_version', '_sdc_sequence'] -%}
        {%- if meta in loaded -%}{%- do order_by.append(meta ~ ' desc nulls last') -%}{%- endif -%}
    {%- endfor -%}
    {%- if not order_by -%}{%- do order_by.append(keys[0]) -%}{%- endif %}

with typed as (
    select
        {%- for column in columns %}
        {%- set name, kind = column[0], column[1] %}
        {%- set source_name = column[2] if column | length > 2 else column[0] %}
        {{ smartforms.smartforms_typed(source_name, kind, loaded) }} as {{ name }},
        {%- endfor %}
        {%- for meta in ['_sdc_batched_at', '_sdc_extracted_at', '_sdc_table_version', '_sdc_sequence'] if meta in loaded %}
        {{ adapter.quote(meta) }} as {{ meta }},
        {%- endfor %}
        {% if '_sdc_deleted_at' in loaded -%}
        {{ smartforms.smartforms_typed('_sdc_deleted_at', 'timestamp', loaded) }}
        {%- else -%}
        cast(null as {{ dbt.type_timestamp() }})
        {%- endif %} as _smartforms_deleted_at
    from {{ relation }}
),

ranked as (
    select
        typed.*,
        row_number() over (partition by {{ keys | join(', ') }} order by {{ order_by | join(', ') }}) as _smartforms_rank
    from typed
)

select
    {%- for column in columns %}
    {{ column[0] }}{{ ',' if not loop.last }}
    {%- endfor %}
from ranked
{# The newest version decides: a row deleted since stays deleted, even when an older
   copy of it was not. #}
where _smartforms_rank = 1
  and _smartforms_deleted_at is null
{%- endmacro %}


{% macro smartforms_typed(name, kind, loaded) -%}
    {%- if execute and name not in loaded -%}
        {%- set sql_type = {
            'text': dbt.type_string(), 'timestamp': dbt.type_timestamp(),
            'bigint': dbt.type_bigint(), 'boolean': dbt.type_boolean(),
            'json': 'text'} [kind] -%}
        {%- if kind == 'json' -%}{{ smartforms.smartforms_parse_json('cast(null as ' ~ dbt.type_string() ~ ')') }}
        {%- else -%}cast(null as {{ sql_type }}){%- endif -%}
    {%- else -%}
        {%- set column = adapter.quote(name) -%}
        {%- set data_type = loaded[name].data_type if name in loaded else '' -%}
        {%- if kind == 'text' -%}cast({{ column }} as {{ dbt.type_string() }})
        {%- elif kind == 'timestamp' -%}{{ smartforms.smartforms_utc_timestamp(column, data_type) }}
        {%- elif kind == 'bigint' -%}cast({{ column }} as {{ dbt.type_bigint() }})
        {%- elif kind == 'boolean' -%}cast({{ column }} as {{ dbt.type_boolean() }})
        {%- elif kind == 'json' -%}
            {%- if 'json' in (data_type | lower) or 'variant' in (data_type | lower) -%}{{ column }}
            {#- target-postgres loads a list as an SQL array (jsonb[]): one JSON array instead. -#}
            {%- elif 'array' in (data_type | lower) or '[]' in data_type -%}{{ smartforms.smartforms_array_to_json(column) }}
            {%- else -%}{{ smartforms.smartforms_parse_json(column) }}{%- endif -%}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
