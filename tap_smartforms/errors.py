"""Errors that end one data source's sync, and keeping secrets out of every message."""

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


def install_redactor() -> None:
    """Attach the redactor to every handler that can write our logs."""
    for handler in logging.getLogger().handlers:
        if REDACTOR not in handler.filters:
            handler.addFilter(REDACTOR)
