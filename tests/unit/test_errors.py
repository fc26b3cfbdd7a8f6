"""Server text in our messages: one line, escaped, bounded, and never a secret."""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter

from tap_smartforms.api_shape import error_text
from tap_smartforms.auth import OAuthClient, RefreshTokenAuthenticator
from tap_smartforms.errors import REDACTOR, SERVER_TEXT_LIMIT, DataSourceError, quote_server_text

TOKEN_URL = "https://auth.example.com/oauth/token"


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("plain words", "plain words"),
        ("line one\nERROR forged line", "line one\\nERROR forged line"),
        ("carriage\rreturn", "carriage\\rreturn"),
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("nul\x00 bell\x07 del\x7f", "nul\\x00 bell\\x07 del\\x7f"),
        ("c1 next-line\x85 csi\x9b", "c1 next-line\\x85 csi\\x9b"),
        ("unicode\u2028separator", "unicode\\u2028separator"),
        ("tab\there", "tab\\there"),
        ("accents été and emoji 🙂 stay", "accents été and emoji 🙂 stay"),
    ],
)
def test_control_characters_are_shown_escaped(text: str, quoted: str):
    assert quote_server_text(text) == quoted


def test_long_text_is_cut_with_an_ellipsis():
    quoted = quote_server_text("x" * 5000)
    assert len(quoted) == SERVER_TEXT_LIMIT
    assert quoted.endswith("…")
    assert quote_server_text("y" * SERVER_TEXT_LIMIT) == "y" * SERVER_TEXT_LIMIT


def test_the_limit_counts_the_escapes_so_the_line_stays_bounded():
    quoted = quote_server_text("\n" * 1000, limit=20)
    assert len(quoted) == 20
    assert "\n" not in quoted


def test_a_secret_is_redacted_before_the_text_is_cut():
    secret = "secret-value-cut-at-the-limit"
    REDACTOR.register(secret)
    # Cut before redaction, the secret's first half would survive and no filter
    # downstream would recognize it.
    quoted = quote_server_text("z" * 290 + secret, limit=300)
    assert "secret-v" not in quoted
    assert "***" in quoted


def test_error_text_from_a_body_is_quoted():
    body = {"error": "bad\nrequest", "message": "see \x1b]8;;https://evil\x07here" + "!" * 400}
    text = error_text(body)
    assert text is not None
    assert text.startswith("bad\\nrequest: see \\x1b]8;;https://evil\\x07here")
    assert len(text) == SERVER_TEXT_LIMIT
    assert text.isprintable()


class _TokenEndpointRefusing(BaseAdapter):
    def __init__(self, body: bytes) -> None:
        super().__init__()
        self.body = body

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        response = requests.Response()
        response.status_code = 400
        response.request = request
        response.url = str(request.url)
        response.raw = io.BytesIO(self.body)
        return response

    def close(self) -> None:
        pass


def test_a_token_endpoint_error_description_is_quoted_on_one_line():
    session = requests.Session()
    session.mount(
        "https://",
        _TokenEndpointRefusing(
            b'{"error": "weird", "error_description": "no\\n2026-01-01 | ERROR forged\\u001b[2J"}'
        ),
    )
    authenticator = RefreshTokenAuthenticator(
        "ds-3",
        OAuthClient(TOKEN_URL, "client", "client-secret-x"),
        "refresh-token-x",
        session=session,
        logger=logging.getLogger("test_errors"),
    )
    with pytest.raises(DataSourceError) as raised:
        authenticator.access_token()
    message = str(raised.value)
    assert "\n" not in message
    assert "\x1b" not in message
    assert "weird: no\\n2026-01-01 | ERROR forged\\x1b[2J" in message
