"""Access tokens from a rotating refresh token: one authenticator per data source.

Why not the SDK's ``OAuthAuthenticator``: it is built per stream (two streams would
refresh the same chain twice, which rotation punishes by revoking it), drops the
rotated ``refresh_token`` of the reply, has no expiry margin, and logs the token
endpoint's error body. Here one authenticator serves all five streams of a data
source, keeps every rotated refresh token, refreshes ahead of expiry, holds a lock
so only one refresh per chain is ever in flight, and turns every failure into a
one-line message that names the data source and what to do.

With a token store (``token_store.RefreshTokenSource``), each try of a refresh runs
under the store's lock: it first re-reads the store (another process may have
rotated the chain meanwhile), and saves the rotated token before anything else
happens. The first try also checks that the store can be written at all, before a
token is spent. Waits between tries happen outside the lock, and every refresh runs
inside the refresh gate (refresh_gate.py), so a run never ends mid-refresh.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests
from typing_extensions import override

from tap_smartforms import api_shape, transport
from tap_smartforms.errors import (
    REDACTOR,
    DataSourceError,
    quote_server_text,
    redirect_refused,
    token_text_problem,
)
from tap_smartforms.refresh_gate import REFRESH_GATE
from tap_smartforms.retry import (
    MAX_TOTAL_SECONDS,
    TransientError,
    retry_after_seconds,
    retry_transient,
)
from tap_smartforms.token_store import (
    HeldToken,
    RefreshTokenSource,
    TokenStoreError,
    fingerprint,
)

REAUTHORIZE_HINT = (
    "repeat the Data Source authorization steps (README, 'Getting tokens'), then give the "
    "new code to tap-smartforms-auth or put the new refresh token in this data source's "
    "refresh_token setting"
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


class _GrantRefused(Exception):
    """invalid_grant: the refresh token sent is expired, revoked or already used."""


class RefreshTokenAuthenticator(requests.auth.AuthBase):
    """Bearer auth for one data source, refreshing its token chain as needed.

    Thread-safe: concurrent callers wait for the one refresh in flight.
    """

    def __init__(
        self,
        data_source_id: str,
        client: OAuthClient,
        refresh_token: str | None,
        *,
        token_source: RefreshTokenSource | None = None,
        expiry_warning_days: int = 0,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger | None = None,
        limits: transport.ReplyLimits = transport.DEFAULT_LIMITS,
        patience_seconds: float = MAX_TOTAL_SECONDS,
    ) -> None:
        """``refresh_token`` is the configured one; with a ``token_source`` (the token
        store) it is only where the chain started, and the store may hold a newer one.
        ``limits`` and ``patience_seconds`` as for ``DataSourceClient``."""
        self.data_source_id = data_source_id
        self._client = client
        self._source = token_source
        self._held: HeldToken | None = None
        if token_source is None and refresh_token:
            self._held = HeldToken(refresh_token, fingerprint(refresh_token), "config")
        self._expiry_warning_days = expiry_warning_days
        self._session = session or transport.new_session()
        self._limits = limits
        self._patience_seconds = patience_seconds
        self._clock = clock
        self._logger = logger or logging.getLogger(__name__)
        self._lock = threading.Lock()
        self._access_token: str | None = None
        self._refresh_due_at = 0.0
        self.refresh_count = 0
        # Tries of the token endpoint that failed and were retried, for the summary.
        self.retry_count = 0
        self._store_checked = False
        # Whether the last try may have reached the server without its reply reaching
        # us (a timeout, a cut connection): the token sent may be spent.
        self._reply_may_be_lost = False
        REDACTOR.register(client.client_secret, refresh_token)

    @property
    def refresh_token(self) -> str | None:
        """The newest refresh token of the chain (the only one still worth keeping)."""
        return None if self._held is None else self._held.value

    @override
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
        # The gate keeps the run alive until a rotated token is saved (refresh_gate.py).
        # Tries are retried here, outside the store's lock: the lock is held for one
        # try only (read the store, POST, save), so while the token endpoint is down
        # every data source waits out its backoff at the same time, not in turn.
        with REFRESH_GATE.refreshing(self.data_source_id):
            retry_transient(
                self._refresh_once,
                describe=f"data source {self.data_source_id}: refreshing the access token",
                logger=self._logger,
                on_give_up=lambda problem: DataSourceError(
                    self.data_source_id, f"could not refresh the access token: {problem}"
                ),
                on_retry=self._count_retry,
                sleep=REFRESH_GATE.pause,
                patience_seconds=self._patience_seconds,
            )

    def _count_retry(self) -> None:
        self.retry_count += 1

    def _refresh_once(self) -> None:
        if REFRESH_GATE.closed and not self._reply_may_be_lost:
            # The last try was answered, so the token sent is still unspent: nothing
            # to recover. After a lost reply the server may have rotated the chain;
            # trying again (inside the reuse window) is what gets the new token.
            raise DataSourceError(
                self.data_source_id, "the run is stopping; its access token was not refreshed"
            )
        first = self.refresh_count == 0
        store_lock = self._source.locked() if self._source else contextlib.nullcontext()
        try:
            with store_lock:
                if self._source is not None and not self._store_checked:
                    # Before the first token is spent: a store that cannot take the
                    # rotated token would lose the chain at the first save.
                    self._source.store.check_writable()
                    self._store_checked = True
                self._refresh_holding_the_store()
                if first and self._source is not None:
                    warning = self._source.expiry_warning(self._expiry_warning_days)
                    if warning:
                        self._logger.warning("data source %s: %s", self.data_source_id, warning)
        except TokenStoreError as error:
            raise DataSourceError(self.data_source_id, str(error)) from None

    def _refresh_holding_the_store(self) -> None:
        if self._source is not None:
            # Another process may have rotated the chain while this one waited for
            # the lock: continue from its token, never from the one it spent.
            self._hold(*self._source.pick(self._held))
        started = self._clock()
        try:
            reply = self._request_tokens()
        except _GrantRefused:
            # The store may hold a newer token than the one refused (a run that
            # rotated it on a copy of the store, or a stale configured token).
            newer = None
            if self._source is not None and self._held is not None:
                newer = self._source.newer_than(self._held)
            if newer is None:
                raise self._grant_refused() from None
            self._hold(newer, "the refresh token was refused; retrying with the token store's")
            try:
                reply = self._request_tokens()
            except _GrantRefused:
                raise self._grant_refused() from None
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
        is_rotated = isinstance(rotated, str) and bool(rotated) and rotated != self.refresh_token
        if is_rotated:
            assert isinstance(rotated, str)
            assert self._held is not None
            REDACTOR.register(rotated)
            self._keep(rotated, self._held)
        if problem := token_text_problem(access_token):
            # Only now that the rotated refresh token is kept: the chain outlives this.
            self._access_token = None
            raise DataSourceError(
                self.data_source_id,
                f"the token endpoint {self._client.token_url} sent an access_token that {problem}",
            )
        self._logger.info(
            "data source %s: access token refreshed (valid %.0f s%s)",
            self.data_source_id,
            lifetime,
            ", refresh token rotated" if is_rotated else "",
        )

    def _hold(self, held: HeldToken, note: str | None) -> None:
        REDACTOR.register(held.value)
        self._held = held
        if note:
            self._logger.info("data source %s: %s", self.data_source_id, note)

    def _keep(self, rotated: str, spent: HeldToken) -> None:
        if self._source is None:
            self._held = HeldToken(rotated, spent.origin, "config")
            return
        # Saved the moment it arrives: the token sent is spent, so this one is the
        # chain's only future. If the store cannot take it, stop this data source
        # now (it keeps the token for this run only) rather than spend more.
        self._held = HeldToken(rotated, spent.origin, "store")
        try:
            self._held = self._source.keep(spent, rotated)
        except TokenStoreError as error:
            raise DataSourceError(
                self.data_source_id,
                f"the rotated refresh token could not be saved ({error}); fix that path "
                f"or set token_store_path, and if the next run reports invalid_grant, "
                f"{REAUTHORIZE_HINT}",
            ) from None

    def _grant_refused(self) -> DataSourceError:
        return DataSourceError(
            self.data_source_id,
            "the refresh token was refused (invalid_grant: expired, revoked or "
            f"already used); {REAUTHORIZE_HINT}",
        )

    def _request_tokens(self) -> dict[str, object]:
        if self._held is None:
            raise DataSourceError(
                self.data_source_id,
                "no refresh token: set this data source's refresh_token, or run "
                "tap-smartforms-auth",
            )
        body = {
            "grant_type": "refresh_token",
            "client_id": self._client.client_id,
            "client_secret": self._client.client_secret,
            "refresh_token": self.refresh_token or "",
        }
        try:
            response = transport.send(
                self._session,
                requests.Request("POST", self._client.token_url, json=body),
                limits=self._limits,
                timeout=TOKEN_REQUEST_TIMEOUT_SECONDS,
                allow_redirects=False,  # a redirect would re-send the secrets elsewhere
            )
        except (TransientError, transport.ReplyTooLarge) as error:
            self._reply_may_be_lost = True
            raise TransientError(f"token endpoint: {error}") from None
        self._reply_may_be_lost = False
        return self._read_token_reply(response)

    def _read_token_reply(self, response: requests.Response) -> dict[str, object]:
        try:
            body = response.json()
        except ValueError:
            body = None
        status = response.status_code
        if 300 <= status < 400:
            raise DataSourceError(
                self.data_source_id, redirect_refused(self._client.token_url, status)
            )
        if status == 429 or status >= 500:
            raise TransientError(
                f"token endpoint answered HTTP {status}",
                retry_after=retry_after_seconds(response),
            )
        if status >= 400:
            code = api_shape.error_code(body)
            if code == "invalid_grant":
                raise _GrantRefused
            if code == "invalid_client":
                raise DataSourceError(
                    self.data_source_id,
                    "the token endpoint refused the OAuth client (invalid_client); check "
                    "client_id and client_secret (top level or in this data source's entry)",
                )
            detail = api_shape.error_text(body) or quote_server_text(response.reason or "")
            raise DataSourceError(
                self.data_source_id,
                f"the token endpoint {self._client.token_url} answered HTTP {status}: {detail}",
            )
        if not isinstance(body, dict):
            raise TransientError("token endpoint replied with a body that is not JSON")
        return body


def _expires_in(value: object) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    return 3600.0  # Atlassian's documented lifetime
