{{ smartforms.smartforms_staged('forms', [
    ('form_id', 'text', 'id'),
    ('data_source_id', 'text'),
    ('name', 'text'),
    ('description', 'text'),
    ('status', 'text'),
    ('created_at', 'timestamp'),
    ('updated_at', 'timestamp'),
    ('question_count', 'bigint'),
    ('extra', 'json'),
], keys=['form_id'], newest='updated_at') }}
