{#- What PostgreSQL, DuckDB and Snowflake spell differently, dispatched on the adapter
    (a project can override any of them, dbt's `dispatch` config). Every "try" macro
    gives null for a value that does not parse, so one odd answer cannot fail a run. -#}

{#- An ISO-8601 instant as text (Z, +02:00, +0200 or no offset = UTC) -> timestamp
    without time zone, in UTC. -#}
{% macro smartforms_parse_instant(expr) -%}
    {{ return(adapter.dispatch('smartforms_parse_instant', 'smartforms')(expr)) }}
{%- endmacro %}

{% macro default__smartforms_parse_instant(expr) -%}
    {#- PostgreSQL has no try_cast: the pattern keeps anything else away from the cast. -#}
    case
        when {{ expr }} ~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)$'
            then cast({{ expr }} as timestamptz) at time zone 'UTC'
        when {{ expr }} ~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$'
            then cast({{ expr }} as timestamp)
    end
{%- endmacro %}

{% macro duckdb__smartforms_parse_instant(expr) -%}
    {#- epoch_us of a timestamptz is the instant whatever the session's TimeZone is;
        make_timestamp of it is that instant as a UTC wall clock. -#}
    make_timestamp(epoch_us(try_cast(
        case when regexp_matches({{ expr }}, '(Z|[+-]\d{2}(:?\d{2})?)$') then {{ expr }} else {{ expr }} || 'Z' end
        as timestamptz)))
{%- endmacro %}

{% macro snowflake__smartforms_parse_instant(expr) -%}
    convert_timezone('UTC', try_to_timestamp_tz(
        regexp_replace(
            case when regexp_like({{ expr }}, '.*(Z|[+-][0-9]{2}(:?[0-9]{2})?)$') then {{ expr }} else {{ expr }} || 'Z' end,
            '([+-][0-9]{2})([0-9]{2})$', '\\1:\\2')
    ))::timestamp_ntz
{%- endmacro %}


{#- A column the target may have loaded as text or as a timestamp (with or without time
    zone) -> timestamp without time zone, in UTC. -#}
{% macro smartforms_utc_timestamp(column_name, data_type) -%}
    {%- set kind = (data_type or '') | lower -%}
    {%- if 'char' in kind or 'text' in kind or 'string' in kind or 'json' in kind -%}
        {{ smartforms.smartforms_parse_instant(column_name) }}
    {%- elif 'with time zone' in kind or 'timestamptz' in kind or '_tz' in kind -%}
        {{ adapter.dispatch('smartforms_tz_to_utc', 'smartforms')(column_name) }}
    {%- else -%}
        cast({{ column_name }} as {{ dbt.type_timestamp() }})
    {%- endif -%}
{%- endmacro %}

{% macro default__smartforms_tz_to_utc(expr) -%}
    ({{ expr }} at time zone 'UTC')
{%- endmacro %}

{% macro duckdb__smartforms_tz_to_utc(expr) -%}
    make_timestamp(epoch_us({{ expr }}))
{%- endmacro %}

{% macro snowflake__smartforms_tz_to_utc(expr) -%}
    convert_timezone('UTC', {{ expr }})::timestamp_ntz
{%- endmacro %}


{#- The SQL type of number and rating columns: PostgreSQL's numeric keeps every digit;
    DuckDB's and Snowflake's bare numeric/number has a fixed scale (3 and 0) that would
    round 0.1234 or 1e-7 away, so there a double. -#}
{% macro smartforms_number_type() -%}
    {{ return(adapter.dispatch('smartforms_number_type', 'smartforms')()) }}
{%- endmacro %}
{% macro default__smartforms_number_type() %}numeric{% endmacro %}
{% macro duckdb__smartforms_number_type() %}double{% endmacro %}
{% macro snowflake__smartforms_number_type() %}float{% endmacro %}


{% macro smartforms_try_number(expr) -%}
    {{ return(adapter.dispatch('smartforms_try_number', 'smartforms')(expr)) }}
{%- endmacro %}

{% macro default__smartforms_try_number(expr) -%}
    case when trim({{ expr }}) ~ '^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$'
        then cast(trim({{ expr }}) as {{ smartforms.smartforms_number_type() }}) end
{%- endmacro %}

{% macro duckdb__smartforms_try_number(expr) -%}
    try_cast(trim({{ expr }}) as {{ smartforms.smartforms_number_type() }})
{%- endmacro %}

{% macro snowflake__smartforms_try_number(expr) -%}
    try_cast(trim({{ expr }}) as {{ smartforms.smartforms_number_type() }})
{%- endmacro %}


{% macro smartforms_try_date(expr) -%}
    {{ return(adapter.dispatch('smartforms_try_date', 'smartforms')(expr)) }}
{%- endmacro %}

{% macro default__smartforms_try_date(expr) -%}
    case when {{ expr }} ~ '^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$'
        then cast({{ expr }} as date) end
{%- endmacro %}

{% macro duckdb__smartforms_try_date(expr) -%}
    try_cast({{ expr }} as date)
{%- endmacro %}

{% macro snowflake__smartforms_try_date(expr) -%}
    try_to_date({{ expr }}, 'YYYY-MM-DD')
{%- endmacro %}


{#- Booleans are written alike everywhere; here for the one place that reads them. -#}
{% macro smartforms_try_boolean(expr) -%}
    case lower(trim({{ expr }})) when 'true' then true when 'false' then false end
{%- endmacro %}


{#- JSON text (as the tap writes extra, value...) -> the warehouse's JSON type. -#}
{% macro smartforms_parse_json(expr) -%}
    {{ return(adapter.dispatch('smartforms_parse_json', 'smartforms')(expr)) }}
{%- endmacro %}

{% macro default__smartforms_parse_json(expr) -%}
    cast({{ expr }} as jsonb)
{%- endmacro %}

{% macro duckdb__smartforms_parse_json(expr) -%}
    try_cast({{ expr }} as json)
{%- endmacro %}

{% macro snowflake__smartforms_parse_json(expr) -%}
    try_parse_json({{ expr }})
{%- endmacro %}


{#- An SQL array column -> one JSON array. -#}
{% macro smartforms_array_to_json(expr) -%}
    {{ return(adapter.dispatch('smartforms_array_to_json', 'smartforms')(expr)) }}
{%- endmacro %}

{% macro default__smartforms_array_to_json(expr) -%}
    to_jsonb({{ expr }})
{%- endmacro %}

{% macro duckdb__smartforms_array_to_json(expr) -%}
    to_json({{ expr }})
{%- endmacro %}

{% macro snowflake__smartforms_array_to_json(expr) -%}
    {{ expr }}
{%- endmacro %}


{#- Text values joined with ", " in a fixed order. -#}
{% macro smartforms_string_agg(expr, order_by) -%}
    {{ return(adapter.dispatch('smartforms_string_agg', 'smartforms')(expr, order_by)) }}
{%- endmacro %}

{% macro default__smartforms_string_agg(expr, order_by) -%}
    string_agg({{ expr }}, ', ' order by {{ order_by }})
{%- endmacro %}

{% macro snowflake__smartforms_string_agg(expr, order_by) -%}
    listagg({{ expr }}, ', ') within group (order by {{ order_by }})
{%- endmacro %}


{#- A text literal, quotes doubled. -#}
{% macro smartforms_literal(value) -%}
    '{{ (value | string) | replace("'", "''") }}'
{%- endmacro %}
