"""The authenticator with the token store, against an in-process token endpoint.

The subprocess tests (tests/test_tokens.py) show these behaviours end to end; here
each one is pinned down on its own, fast: a rotated refresh token is saved at once,
the store is re-read under its lock before a refresh, invalid_grant falls back to
the store exactly once, and no secret reaches a log line.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter

from tap_smartforms.auth import OAuthClient, RefreshTokenAuthenticator
from tap_smartforms.errors import REDACTOR, DataSourceError, SecretRedactor
from tap_smartforms.token_store import EntryKey, RefreshTokenSource, TokenStore, fingerprint

CLIENT = OAuthClient("https://auth.example.com/oauth/token", "client-id", "client-secret-9f3a")
KEY = EntryKey(CLIENT.token_url, CLIENT.client_id, "ds-1")
CONFIGURED = "rt-configured-5e1d"
ACCESS_TOKEN_LIFETIME = 3600.0


def token_reply(
    request: requests.PreparedRequest, status: int, body: dict[str, Any]
) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.reason = "OK" if status == 200 else "Forbidden"
    response.request = request
    response.headers["Content-Type"] = "application/json"
    # A body to stream, as from a real connection (transport.py reads with a cap).
    response.raw = io.BytesIO(json.dumps(body).encode())
    return response


class RotatingTokenEndpoint(BaseAdapter):
    """A token endpoint served in process to a real ``requests.Session``: only the
    chain's newest refresh token is accepted, and each refresh rotates it
    (docs/api-contract.md §2)."""

    def __init__(self, current: str = CONFIGURED) -> None:
        super().__init__()
        self.current = current
        self.sent: list[str] = []
        self.access_tokens: list[str] = []
        self._issued = 0

    def rotate_elsewhere(self) -> str:
        """Another process refreshed the chain: returns the token it now holds."""
        self._issued += 1
        self.current = f"rt-elsewhere-{self._issued:04d}"
        return self.current

    def close(self) -> None:
        pass

    def session(self) -> requests.Session:
        session = requests.Session()
        session.mount(CLIENT.token_url, self)
        return session

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        assert request.url == CLIENT.token_url
        body = json.loads(request.body or b"{}")
        assert body["client_secret"] == CLIENT.client_secret
        sent = body["refresh_token"]
        self.sent.append(sent)
        if sent != self.current:
            return token_reply(
                request, 403, {"error": "invalid_grant", "error_description": "stale"}
            )
        self._issued += 1
        self.current = f"rt-rotated-{self._issued:04d}"
        access_token = f"at-issued-{self._issued:04d}"
        self.access_tokens.append(access_token)
        return token_reply(
            request,
            200,
            {
                "access_token": access_token,
                "refresh_token": self.current,
                "expires_in": ACCESS_TOKEN_LIFETIME,
            },
        )


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def pass_access_token_lifetime(self) -> None:
        self.now += ACCESS_TOKEN_LIFETIME


@pytest.fixture
def store(tmp_path: Path) -> TokenStore:
    return TokenStore(tmp_path / "tokens.json")


@pytest.fixture
def endpoint() -> RotatingTokenEndpoint:
    return RotatingTokenEndpoint()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def make_authenticator(
    endpoint: RotatingTokenEndpoint, clock: ManualClock
) -> Callable[..., RefreshTokenAuthenticator]:
    def make(
        token_source: RefreshTokenSource | None, logger: logging.Logger | None = None
    ) -> RefreshTokenAuthenticator:
        return RefreshTokenAuthenticator(
            KEY.data_source_id,
            CLIENT,
            CONFIGURED,
            token_source=token_source,
            session=endpoint.session(),
            clock=clock,
            logger=logger,
        )

    return make


def stored_refresh_token(store: TokenStore) -> str:
    # Read the file itself, not through an object that may cache.
    (entry,) = json.loads(store.path.read_text())["entries"]
    return str(entry["refresh_token"])


def save_other_chain(store: TokenStore, refresh_token: str, origin_token: str) -> None:
    with store.locked():
        store.save_rotation(KEY, refresh_token, fingerprint(origin_token))


# ------------------------------------------------------------- saving at once


def test_a_rotated_refresh_token_is_in_the_store_file_after_one_refresh(
    store, endpoint, make_authenticator
):
    authenticator = make_authenticator(RefreshTokenSource(store, KEY, CONFIGURED))

    authenticator.access_token()

    assert endpoint.sent == [CONFIGURED]
    assert stored_refresh_token(store) == endpoint.current
    assert store.read(KEY).origin == fingerprint(CONFIGURED)


# ------------------------------------------------- re-reading under the lock


class SignallingSource(RefreshTokenSource):
    """Says when the authenticator asks for the store's lock, i.e. is about to wait."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.lock_asked = threading.Event()

    def locked(self) -> AbstractContextManager[None]:
        self.lock_asked.set()
        return super().locked()


def test_a_token_another_process_rotated_while_the_lock_was_held_is_used_instead(
    store, endpoint, clock, make_authenticator
):
    source = SignallingSource(store, KEY, CONFIGURED)
    authenticator = make_authenticator(source)
    authenticator.access_token()
    spent_here = endpoint.current  # what this process holds, and must not send again
    clock.pass_access_token_lifetime()
    source.lock_asked.clear()
    errors: list[BaseException] = []

    def refresh() -> None:
        try:
            authenticator.access_token()
        except BaseException as error:  # reported to the test thread
            errors.append(error)

    with store.locked():  # another process, mid-refresh
        waiting = threading.Thread(target=refresh)
        waiting.start()
        assert source.lock_asked.wait(timeout=30)
        theirs = endpoint.rotate_elsewhere()
        store.save_rotation(KEY, theirs, fingerprint(CONFIGURED))
    waiting.join(timeout=30)

    assert errors == []
    assert endpoint.sent == [CONFIGURED, theirs]
    assert spent_here not in endpoint.sent
    assert stored_refresh_token(store) == endpoint.current


# ---------------------------------------------------------------- invalid_grant


def test_a_refused_configured_token_is_retried_once_with_the_stored_one(
    store, endpoint, make_authenticator
):
    # The store's chain did not grow from the configured token (say a run on a copy
    # of the store rotated it), so the configured one is tried first.
    endpoint.current = "rt-stored-7c20"
    save_other_chain(store, "rt-stored-7c20", origin_token="rt-other-origin")
    authenticator = make_authenticator(RefreshTokenSource(store, KEY, CONFIGURED))

    authenticator.access_token()

    assert endpoint.sent == [CONFIGURED, "rt-stored-7c20"]
    assert stored_refresh_token(store) == endpoint.current


def test_when_the_stored_token_is_refused_too_the_data_source_fails_after_two_tries(
    store, endpoint, make_authenticator
):
    endpoint.current = "rt-valid-elsewhere-31"
    save_other_chain(store, "rt-stored-7c20", origin_token="rt-other-origin")
    authenticator = make_authenticator(RefreshTokenSource(store, KEY, CONFIGURED))

    with pytest.raises(DataSourceError, match=r"refused \(invalid_grant"):
        authenticator.access_token()

    assert endpoint.sent == [CONFIGURED, "rt-stored-7c20"]
    assert stored_refresh_token(store) == "rt-stored-7c20"


def test_a_refused_token_the_store_also_holds_is_not_sent_again(
    store, endpoint, make_authenticator
):
    endpoint.current = "rt-valid-elsewhere-31"
    save_other_chain(store, "rt-stored-7c20", origin_token=CONFIGURED)
    authenticator = make_authenticator(RefreshTokenSource(store, KEY, CONFIGURED))

    with pytest.raises(DataSourceError, match=r"refused \(invalid_grant"):
        authenticator.access_token()

    assert endpoint.sent == ["rt-stored-7c20"]


# ------------------------------------------------------------------- redaction


@pytest.fixture
def redacted_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger whose one handler carries the tap's redactor, as install_redactor
    sets up the tap's handlers."""
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    handler.addFilter(REDACTOR)
    logger = logging.getLogger(f"{__name__}.redacted")
    logger.propagate = False
    logger.addHandler(handler)
    yield logger, output
    logger.removeHandler(handler)


def log_everywhere(logger: logging.Logger, secret: str) -> None:
    """``secret`` in a message, in an argument, and in an exception's text."""
    logger.warning(f"in the message: {secret}")
    logger.warning("in an argument: %s", secret)
    try:
        raise RuntimeError(f"in the exception: {secret}")
    except RuntimeError:
        logger.exception("a failure")


@pytest.mark.parametrize(
    "secret",
    ["rt-refresh-0a1b2c", "client-secret-4d5e", "at-access-6f7a8b"],
    ids=["refresh token", "client secret", "access token"],
)
def test_the_redactor_masks_a_registered_secret_in_message_args_and_exception(secret):
    redactor = SecretRedactor()
    redactor.register(secret)
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    handler.addFilter(redactor)
    logger = logging.getLogger(f"{__name__}.masks")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        log_everywhere(logger, secret)
    finally:
        logger.removeHandler(handler)

    text = output.getvalue()
    assert secret not in text
    for masked in ("in the message: ***", "in an argument: ***", "in the exception: ***"):
        assert masked in text


def test_every_secret_of_a_refresh_is_registered_with_the_redactor(
    store, endpoint, make_authenticator, redacted_log
):
    logger, output = redacted_log
    authenticator = make_authenticator(RefreshTokenSource(store, KEY, CONFIGURED))
    authenticator.access_token()
    secrets = [CONFIGURED, CLIENT.client_secret, endpoint.access_tokens[0], endpoint.current]

    for secret in secrets:
        log_everywhere(logger, secret)

    text = output.getvalue()
    for secret in secrets:
        assert secret not in text
    for masked in ("in the message: ***", "in an argument: ***", "in the exception: ***"):
        assert text.count(masked) == len(secrets)


def test_the_authenticator_itself_never_logs_a_secret(store, endpoint, clock, make_authenticator):
    output = io.StringIO()
    logger = logging.getLogger(f"{__name__}.unredacted")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    handler = logging.StreamHandler(output)  # no redactor: what the tap itself writes
    logger.addHandler(handler)
    try:
        authenticator = make_authenticator(RefreshTokenSource(store, KEY, CONFIGURED), logger)
        authenticator.access_token()
        clock.pass_access_token_lifetime()
        authenticator.access_token()
    finally:
        logger.removeHandler(handler)

    text = output.getvalue()
    assert "refresh token rotated" in text
    for secret in [CONFIGURED, CLIENT.client_secret, *endpoint.access_tokens, *endpoint.sent]:
        assert secret not in text
