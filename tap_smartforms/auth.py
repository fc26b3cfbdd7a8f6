"""Access tokens from a rotating refresh token: one authenticator per data source.

Why not the SDK's ``OAuthAuthenticator``: it is built per stream (two streams would
refresh the same chain twice, which rotation punishes by revoking it), drops the
rotated ``refresh_token`` of the reply, has no expiry margin, and logs the token
endpoint's error body. Here one authenticator serves all five streams of a data
source, keeps every rotated refresh token, refreshes ahead of expiry, holds a lock
so only one refresh per chain is ever in flight, and turns every failure into a
one-line message that names the data source and what to do.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

from tap_smartforms import mapping
from tap_smartforms.errors import REDACTOR, DataSourceError
from tap_smartforms.retry import TransientError, retry_after_seconds, retry_transient

REAUTHORIZE_HINT = (
    "repeat the Data Source authorization steps (README, 'Getting tokens') and put the "
    "new refresh token in this data source's refresh_token setting"
)

# Refresh this long before the access token expires, so a token never expires
# between being attached to a request and the server checking it. Short-lived
# tokens (tests use 2 s) get a tenth of their lifetime instead.
EXPIRY_MARGIN_SECONDS = 60.0
TOKEN_REQUEST_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class OAuthClient:
    """Where and as whom to refresh."""

    token_url: str
    client_id: str
    client_secret: str


# Called with each rotated refresh token the moment it arrives (the token store).
RotationListener = Callable[[str], None]


class RefreshTokenAuthenticator(requests.auth.AuthBase):
    """Bearer auth for one data source, refreshing its token chain as needed.

    Thread-safe: concurrent callers wait for the one refresh in flight.
    """

    def __init__(
        self,
        data_source_id: str,
        client: OAuthClient,
        refresh_token: str,
        *,
        session: requests.Session | None = None,
        on_rotation: RotationListener | None = None,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger | None = None,
    ) -> None:
        self.data_source_id = data_source_id
        self._client = client
        self._refresh_token = refresh_token
        self._session = session or requests.Session()
        self._on_rotation = on_rotation
        self._clock = clock
        self._logger = logger or logging.getLogger(__name__)
        self._lock = threading.Lock()
        self._access_token: str | None = None
        self._refresh_due_at = 0.0
        self.refresh_count = 0
        REDACTOR.register(client.client_secret, refresh_token)

    @property
    def refresh_token(self) -> str:
        """The newest refresh token of the chain (the only one still worth keeping)."""
        return self._refresh_token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.access_token()}"
        return request

    def access_token(self) -> str:
        """A valid access token, refreshing first if it is missing or about to expire."""
        with self._lock:
            if self._access_token is None or self._clock() >= self._refresh_due_at:
                self._refresh()
            assert self._access_token is not None
            return self._access_token

    def refresh_after_rejection(self, rejected_token: str | None) -> None:
        """The API refused ``rejected_token`` (401): get a new one, unless another
        thread already did while this one waited for the lock."""
        with self._lock:
            if rejected_token is None or rejected_token == self._access_token:
                self._refresh()

    def _refresh(self) -> None:
        started = self._clock()
        reply = retry_transient(
            self._request_tokens,
            describe=f"data source {self.data_source_id}: refreshing the access token",
            logger=self._logger,
            on_give_up=lambda problem: DataSourceError(
                self.data_source_id, f"could not refresh the access token: {problem}"
            ),
        )
        access_token = reply.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise DataSourceError(
                self.data_source_id,
                f"the token endpoint {self._client.token_url} replied without an access_token",
            )
        REDACTOR.register(access_token)
        lifetime = _expires_in(reply.get("expires_in"))
        margin = min(EXPIRY_MARGIN_SECONDS, lifetime / 10)
        self._access_token = access_token
        self._refresh_due_at = started + lifetime - margin
        self.refresh_count += 1

        rotated = reply.get("refresh_token")
        # A reply without refresh_token leaves the current one valid (Atlassian).
        if isinstance(rotated, str) and rotated and rotated != self._refresh_token:
            REDACTOR.register(rotated)
            self._refresh_token = rotated
            if self._on_rotation is not None:
                self._on_rotation(rotated)
        self._logger.info(
            "data source %s: access token refreshed (valid %.0f s%s)",
            self.data_source_id,
            lifetime,
            ", refresh token rotated" if rotated else "",
        )

    def _request_tokens(self) -> dict[str, object]:
        body = {
            "grant_type": "refresh_token",
            "client_id": self._client.client_id,
            "client_secret": self._client.client_secret,
            "refresh_token": self._refresh_token,
        }
        try:
            response = self._session.post(
                self._client.token_url, json=body, timeout=TOKEN_REQUEST_TIMEOUT_SECONDS
            )
        except (requests.ConnectionError, requests.Timeout) as error:
            raise TransientError(f"token endpoint unreachable ({type(error).__name__})") from None
        return self._read_token_reply(response)

    def _read_token_reply(self, response: requests.Response) -> dict[str, object]:
        try:
            body = response.json()
        except ValueError:
            body = None
        status = response.status_code
        if status == 429 or status >= 500:
            raise TransientError(
                f"token endpoint answered HTTP {status}",
                retry_after=retry_after_seconds(response),
            )
        if status >= 400:
            code = mapping.error_code(body)
            if code == "invalid_grant":
                raise DataSourceError(
                    self.data_source_id,
                    "the refresh token was refused (invalid_grant: expired, revoked or "
                    f"already used); {REAUTHORIZE_HINT}",
                )
            if code == "invalid_client":
                raise DataSourceError(
                    self.data_source_id,
                    "the token endpoint refused the OAuth client (invalid_client); check "
                    "client_id and client_secret (top level or in this data source's entry)",
                )
            detail = mapping.error_text(body) or response.reason
            raise DataSourceError(
                self.data_source_id,
                f"the token endpoint {self._client.token_url} answered HTTP {status}: "
                f"{REDACTOR.redact(str(detail))}",
            )
        if not isinstance(body, dict):
            raise TransientError("token endpoint replied with a body that is not JSON")
        return body


def _expires_in(value: object) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    return 3600.0  # Atlassian's documented lifetime
