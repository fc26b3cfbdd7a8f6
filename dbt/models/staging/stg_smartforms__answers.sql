{{ smartforms.smartforms_staged('answers', [
    ('response_id', 'text'),
    ('question_id', 'text'),
    ('form_id', 'text'),
    ('data_source_id', 'text'),
    ('label', 'text'),
    ('type', 'text'),
    ('value', 'text'),
    ('value_json', 'json', 'value'),
    ('value_text', 'text'),
    ('response_updated_at', 'timestamp'),
    ('extra', 'json'),
], keys=['response_id', 'question_id'], newest='response_updated_at') }}
