{{ smartforms.smartforms_staged('questions', [
    ('form_id', 'text'),
    ('question_id', 'text', 'id'),
    ('data_source_id', 'text'),
    ('position', 'bigint'),
    ('label', 'text'),
    ('type', 'text'),
    ('required', 'boolean'),
    ('options', 'json'),
    ('extra', 'json'),
], keys=['form_id', 'question_id']) }}
