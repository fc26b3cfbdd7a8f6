{#- Column names for the questions of one form (README of the package, "Column names").

    smartforms_column_names(questions, taken=[]) -> list of names, one per question, in order.
    `questions` is a list of (question_id, label) pairs; `taken` holds names already used
    (the response columns of the wide model), so a question labelled "Status" cannot
    shadow the response's status.

    The rules, in order: lower case; Latin letters folded to ASCII (é -> e, ß -> ss,
    ø -> o, combining accents dropped); every run of other characters (spaces,
    punctuation, CJK, emoji) becomes one "_"; a leading digit gets "q_" in front; SQL
    keywords get "_" appended; an empty result falls back to q_<question id>; at most
    63 characters (PostgreSQL's limit, well under Snowflake's 255); a name already taken
    gets _2, _3... (shortened to fit). Only [a-z0-9_] remain, starting with a letter: the
    names work unquoted in PostgreSQL, DuckDB and Snowflake alike.
-#}

{% macro smartforms_column_names(questions, taken=[]) -%}
    {%- set used = [] -%}
    {%- for name in taken -%}{%- do used.append(name | lower) -%}{%- endfor -%}
    {%- set names = [] -%}
    {%- for question in questions -%}
        {%- set base = smartforms.smartforms_snake_name(question[1]) -%}
        {%- if base == '' -%}
            {%- set base = smartforms.smartforms_snake_name(question[0]) -%}
            {%- if not base.startswith('q_') -%}{%- set base = ('q_' ~ base).rstrip('_') -%}{%- endif -%}
        {%- endif -%}
        {%- set name = smartforms.smartforms_unique_name(base, used) -%}
        {%- do used.append(name) -%}
        {%- do names.append(name) -%}
    {%- endfor -%}
    {{- return(names) -}}
{%- endmacro %}


{#- dbt run-operation smartforms_print_column_names --args '{questions: [[id, label], ...]}'
    prints the names as a JSON list: how the rules can be tried (and are tested). -#}
{% macro smartforms_print_column_names(questions, taken=[]) -%}
    {%- do print(tojson(smartforms.smartforms_column_names(questions, taken))) -%}
{%- endmacro %}


{% macro smartforms_unique_name(base, used, max_length=63) -%}
    {%- set name = base[:max_length] -%}
    {%- if name not in used -%}{{- return(name) -}}{%- endif -%}
    {#- A loop with a bound: Jinja has no while. More duplicates than this is no form. -#}
    {%- for n in range(2, 100000) -%}
        {%- set suffix = '_' ~ n -%}
        {%- set candidate = base[:max_length - suffix | length] ~ suffix -%}
        {%- if candidate not in used -%}{{- return(candidate) -}}{%- endif -%}
    {%- endfor -%}
{%- endmacro %}


{% macro smartforms_snake_name(text) -%}
    {%- set re = modules.re -%}
    {%- set folded = smartforms.smartforms_ascii_fold((text or '') | string | lower) -%}
    {%- set name = re.sub('[^a-z0-9]+', '_', folded).strip('_') -%}
    {%- if name == '' -%}{{- return('') -}}{%- endif -%}
    {%- if re.match('[0-9]', name) -%}{%- set name = 'q_' ~ name -%}{%- endif -%}
    {%- set name = name[:63].rstrip('_') -%}
    {%- if name in smartforms.smartforms_reserved_words() -%}{%- set name = name ~ '_' -%}{%- endif -%}
    {{- return(name) -}}
{%- endmacro %}


{#- Jinja in dbt has no unicodedata: the Latin letters of Unicode's Latin-1 Supplement,
    Latin Extended-A/B and Latin Extended Additional blocks, folded as NFKD would, are
    spelled out here (generated once from unicodedata). -#}
{% macro smartforms_ascii_fold(text) -%}
    {%- set single_from = "ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖØÙÚÛÜÝàáâãäåçèéêëìíîïðñòóôõöøùúûüýÿĀāĂăĄąĆćĈĉĊċČčĎďĐđĒēĔĕĖėĘęĚěĜĝĞğĠġĢģĤĥĦħĨĩĪīĬĭĮįİıĴĵĶķĸĹĺĻļĽľĿŀŁłŃńŅņŇňŉŊŋŌōŎŏŐőŔŕŖŗŘřŚśŜŝŞşŠšŢţŤťŦŧŨũŪūŬŭŮůŰűŲųŴŵŶŷŸŹźŻżŽžſƠơƯưǍǎǏǐǑǒǓǔǕǖǗǘǙǚǛǜǞǟǠǡǦǧǨǩǪǫǬǭǰǴǵǸǹǺǻȀȁȂȃȄȅȆȇȈȉȊȋȌȍȎȏȐȑȒȓȔȕȖȗȘșȚțȞȟȦȧȨȩȪȫȬȭȮȯȰȱȲȳḀḁḂḃḄḅḆḇḈḉḊḋḌḍḎḏḐḑḒḓḔḕḖḗḘḙḚḛḜḝḞḟḠḡḢḣḤḥḦḧḨḩḪḫḬḭḮḯḰḱḲḳḴḵḶḷḸḹḺḻḼḽḾḿṀṁṂṃṄṅṆṇṈṉṊṋṌṍṎṏṐṑṒṓṔṕṖṗṘṙṚṛṜṝṞṟṠṡṢṣṤṥṦṧṨṩṪṫṬṭṮṯṰṱṲṳṴṵṶṷṸṹṺṻṼṽṾṿẀẁẂẃẄẅẆẇẈẉẊẋẌẍẎẏẐẑẒẓẔẕẖẗẘẙẚẛẠạẢảẤấẦầẨẩẪẫẬậẮắẰằẲẳẴẵẶặẸẹẺẻẼẽẾếỀềỂểỄễỆệỈỉỊịỌọỎỏỐốỒồỔổỖỗỘộỚớỜờỞởỠỡỢợỤụỦủỨứỪừỬửỮữỰựỲỳỴỵỶỷỸỹ" -%}
    {%- set single_to = "aaaaaaceeeeiiiidnoooooouuuuyaaaaaaceeeeiiiidnoooooouuuuyyaaaaaaccccccccddddeeeeeeeeeegggggggghhhhiiiiiiiiiijjkkkllllllllllnnnnnnnnnoooooorrrrrrssssssssttttttuuuuuuuuuuuuwwyyyzzzzzzsoouuaaiioouuuuuuuuuuaaaaggkkoooojggnnaaaaaaeeeeiiiioooorrrruuuusstthhaaeeooooooooyyaabbbbbbccddddddddddeeeeeeeeeeffgghhhhhhhhhhiiiikkkkkkllllllllmmmmmmnnnnnnnnoooooooopppprrrrrrrrssssssssssttttttttuuuuuuuuuuvvvvwwwwwwwwwwxxxxyyzzzzzzhtwyasaaaaaaaaaaaaaaaaaaaaaaaaeeeeeeeeeeeeeeeeiiiioooooooooooooooooooooooouuuuuuuuuuuuuuyyyyyyyy" -%}
    {%- set double = {"æ": "ae", "ß": "ss", "þ": "th", "œ": "oe", "ĳ": "ij", "ǆ": "dz", "ǳ": "dz", "ǉ": "lj", "ǌ": "nj"} -%}
    {%- set out = [] -%}
    {%- for ch in text -%}
        {%- set at = single_from.find(ch) -%}
        {%- if at >= 0 -%}{%- do out.append(single_to[at]) -%}
        {%- elif ch in double -%}{%- do out.append(double[ch]) -%}
        {#- Combining accents (e + U+0301): dropped, so decomposed text folds as composed does. -#}
        {%- elif ch >= '̀' and ch <= 'ͯ' -%}
        {%- else -%}{%- do out.append(ch) -%}
        {%- endif -%}
    {%- endfor -%}
    {{- return(out | join('')) -}}
{%- endmacro %}


{#- Words that cannot be an unquoted column name in at least one of PostgreSQL, DuckDB
    and Snowflake (their reserved keywords, the ones a form label is likely to be). -#}
{% macro smartforms_reserved_words() -%}
    {{- return([
        'all', 'alter', 'analyse', 'analyze', 'and', 'any', 'array', 'as', 'asc',
        'asymmetric', 'between', 'both', 'by', 'case', 'cast', 'check', 'collate', 'column',
        'connect', 'connection', 'constraint', 'create', 'cross', 'current',
        'current_date', 'current_role', 'current_time', 'current_timestamp',
        'current_user', 'default', 'deferrable', 'delete', 'desc', 'distinct', 'do',
        'drop', 'else', 'end', 'except', 'exists', 'false', 'fetch', 'following', 'for',
        'foreign', 'from', 'full', 'grant', 'group', 'gscluster', 'having', 'ilike', 'in',
        'increment', 'initially', 'inner', 'insert', 'intersect', 'into', 'is', 'join',
        'lateral', 'leading', 'left', 'like', 'limit', 'localtime', 'localtimestamp',
        'minus', 'natural', 'not', 'null', 'of', 'offset', 'on', 'only', 'or', 'order',
        'outer', 'placing', 'primary', 'qualify', 'references', 'regexp', 'returning',
        'revoke', 'right', 'rlike', 'row', 'rows', 'sample', 'select', 'session_user',
        'set', 'some', 'start', 'symmetric', 'table', 'tablesample', 'then', 'to',
        'trailing', 'trigger', 'true', 'try_cast', 'union', 'unique', 'update', 'user',
        'using', 'values', 'variadic', 'view', 'when', 'whenever', 'where', 'window', 'with',
    ]) -}}
{%- endmacro %}
