"""Errors that end one data source's sync, and keeping secrets and forged lines out of
every message."""

from __future__ import annotations

import logging
import threading


class DataSourceError(Exception):
    """Ends the sync of one data source; the others carry on.

    The message is one line that names the data source and says what to fix.
    """

    def __init__(self, data_source_id: str, problem: str) -> None:
        self.data_source_id = data_source_id
        self.problem = problem
        super().__init__(f"data source {data_source_id}: {problem}")


class SecretRedactor(logging.Filter):
    """Replaces every known secret in log records with ``***``.

    Secrets are registered the moment the tap sees them (config, token replies), so
    even a message we did not write (a library's exception text) cannot leak one.
    """

    _MIN_SECRET_LENGTH = 6  # shorter values would mangle ordinary words

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def register(self, *values: str | None) -> None:
        with self._lock:
            self._secrets.update(
                value for value in values if value and len(value) >= self._MIN_SECRET_LENGTH
            )

    def redact(self, text: str) -> str:
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets:
            message = record.getMessage()
            redacted = self.redact(message)
            if redacted != message:
                record.msg, record.args = redacted, None
            if record.exc_info and record.exc_info[1] is not None:
                # Tracebacks are rendered later from exc_info; render them now, redacted.
                record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
                record.exc_info = None
        return True


REDACTOR = SecretRedactor()


SERVER_TEXT_LIMIT = 300
_ELLIPSIS = "…"
# C0 controls, DEL and C1 controls, plus the Unicode line and paragraph separators:
# any of them lets a server's text start what looks like a log line of our own, or
# move the cursor and recolour a terminal (ESC).
_CONTROL_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}
_CONTROL_ESCAPES.update(
    {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", 0x2028: "\\u2028", 0x2029: "\\u2029"}
)


def quote_server_text(text: object, limit: int = SERVER_TEXT_LIMIT) -> str:
    """Text from a server, made safe to put in one log line or error message.

    Secrets are redacted first (so truncation can never leave half a secret that the
    log filter would no longer recognize), then control characters are shown
    escaped (``\\n`` as backslash-n), then the text is cut to ``limit`` characters
    with an ellipsis: an error page must not drown the line that quotes it.
    """
    escaped = REDACTOR.redact(str(text)).translate(_CONTROL_ESCAPES)
    if len(escaped) <= limit:
        return escaped
    return escaped[: max(0, limit - len(_ELLIPSIS))] + _ELLIPSIS


def install_redactor() -> None:
    """Attach the redactor to every handler that can write our logs."""
    for handler in logging.getLogger().handlers:
        if REDACTOR not in handler.filters:
            handler.addFilter(REDACTOR)
