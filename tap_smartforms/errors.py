"""Errors that end one data source's sync, and keeping secrets and forged lines out of
every message."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

from typing_extensions import override


class DataSourceError(Exception):
    """Ends the sync of one data source; the others carry on.

    The message is one line that names the data source and says what to fix.
    """

    def __init__(self, data_source_id: str, problem: str) -> None:
        self.data_source_id = data_source_id
        # Redacted as it is built: the message may carry a server's text or a trace id
        # and travels beyond our loggers (tracebacks, the run report, a caller's print).
        self.problem = REDACTOR.redact(problem)
        super().__init__(f"data source {data_source_id}: {self.problem}")


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
        forms = {form for value in values if value for form in _written_forms(value)}
        with self._lock:
            self._secrets.update(form for form in forms if len(form) >= self._MIN_SECRET_LENGTH)

    def redact(self, text: str) -> str:
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            text = text.replace(secret, "***")
        return text

    @override
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
            elif record.exc_text:
                record.exc_text = self.redact(record.exc_text)
            if record.stack_info:
                record.stack_info = self.redact(record.stack_info)
        return True


def _written_forms(secret: str) -> set[str]:
    """The secret as it appears in text that quotes it: itself, JSON-escaped (a logged
    request body), repr'd (an exception's args), URL-encoded (a form body or query)."""
    return {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret, safe=""),
    }


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


# Our loggers: the SDK names the tap's logger after the plugin, our modules use __name__.
OWN_LOGGER_PREFIXES = ("tap-smartforms", "tap_smartforms")


def install_redactor(extra_loggers: Iterable[logging.Logger] = ()) -> None:
    """Attach the redactor to our loggers and to every handler that can write our logs.

    A logger's filter sees only records logged on that very logger (not those of its
    children), and a handler's filter only records that reach it; so both: each of our
    loggers (the SDK's tap logger, every ``tap_smartforms.*`` module logger, and
    ``extra_loggers``), and the handlers of the root and of every configured logger.
    """
    manager = logging.Logger.manager
    known = [logger for logger in manager.loggerDict.values() if isinstance(logger, logging.Logger)]
    own = [logger for logger in known if logger.name.startswith(OWN_LOGGER_PREFIXES)]
    own += [logging.getLogger(prefix) for prefix in OWN_LOGGER_PREFIXES]
    for logger in [*own, *extra_loggers]:
        if REDACTOR not in logger.filters:
            logger.addFilter(REDACTOR)
    for logger in [logging.getLogger(), *known, *extra_loggers]:
        for handler in logger.handlers:
            if REDACTOR not in handler.filters:
                handler.addFilter(REDACTOR)


# Characters an HTTP header (where a token ends up, as "Authorization: Bearer ...")
# cannot carry: control characters (a line break would start a header of its own)
# and anything beyond Latin-1, which http.client cannot encode.
def token_text_problem(value: str) -> str | None:
    """Why ``value`` cannot be a token, without quoting it; None when it can."""
    if value != value.strip():
        return "begins or ends with a space or line break"
    if any(ord(character) < 0x20 or ord(character) == 0x7F for character in value):
        return "holds a control character or line break"
    if any(ord(character) > 0xFF for character in value):
        return "holds a character that is not Latin-1 (an HTTP header cannot carry it)"
    return None


def redirect_refused(token_url: str, status: int) -> str:
    """The one line for a token endpoint answering with a redirect (never followed)."""
    return (
        f"the token endpoint {token_url} answered HTTP {status}, a redirect; it was not "
        "followed, as that would send the client secret and refresh token to another URL: "
        "set oauth_token_url to the token endpoint itself"
    )
