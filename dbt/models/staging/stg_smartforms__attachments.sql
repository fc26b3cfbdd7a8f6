{{ smartforms.smartforms_staged('attachments', [
    ('attachment_id', 'text', 'id'),
    ('response_id', 'text'),
    ('question_id', 'text'),
    ('form_id', 'text'),
    ('data_source_id', 'text'),
    ('file_name', 'text'),
    ('mime_type', 'text'),
    ('size_bytes', 'bigint'),
    ('download_url', 'text'),
    ('response_updated_at', 'timestamp'),
    ('extra', 'json'),
], keys=['attachment_id'], newest='response_updated_at') }}
