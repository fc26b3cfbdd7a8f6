"""HTTP for one data source: fetch a page of responses, whatever the API throws at us.

Why not ``RESTStream``'s request machinery: it binds one authenticator, one session
and one paginator to a stream, while here one request feeds five streams and each
data source has its own token chain and request budget. So each data source gets
a ``DataSourceClient``; streams never speak HTTP themselves.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import requests

from tap_smartforms import api_shape, transport
from tap_smartforms.auth import RefreshTokenAuthenticator
from tap_smartforms.errors import DataSourceError, quote_server_text
from tap_smartforms.ratelimit import SlidingWindowLimiter
from tap_smartforms.retry import (
    MAX_TOTAL_SECONDS,
    TransientError,
    retry_after_seconds,
    retry_transient,
)
from tap_smartforms.transport import ReplyLimits, ReplyTooLarge

CONNECT_TIMEOUT_SECONDS = 10.0
# The server gives up generating a page after 25 s [sibling]; allow for transfer.
READ_TIMEOUT_SECONDS = 90.0
SCOPE_MISMATCH = "scope does not match"


class PageTooLarge(DataSourceError):
    """413, or a reply past the tap's own size cap: this page is too large. The
    pager asks for fewer responses; only when a single response is too large
    does it end the data source, with this message."""


@dataclass
class ClientCounters:
    requests: int = 0
    retries: int = 0


class DataSourceClient:
    """Fetches and shapes pages of one data source, within its request budget."""

    def __init__(
        self,
        endpoint: api_shape.Endpoint,
        authenticator: RefreshTokenAuthenticator,
        limiter: SlidingWindowLimiter,
        *,
        user_agent: str,
        logger: logging.Logger,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        limits: ReplyLimits = transport.DEFAULT_LIMITS,
        patience_seconds: float = MAX_TOTAL_SECONDS,
    ) -> None:
        """``session``: one from ``transport.new_session`` (the default), or the
        ``limits`` deadline cannot cut its connections. ``patience_seconds``: how
        long one page is retried before the data source fails."""
        self.endpoint = endpoint
        self.data_source_id = endpoint.data_source_id
        self.authenticator = authenticator
        self.limiter = limiter
        self.counters = ClientCounters()
        # What this data source's replies carry, for the end-of-run drift report.
        self.field_tally = api_shape.new_field_tally()
        self._user_agent = user_agent
        self._logger = logger
        self._session = session or transport.new_session()
        self._sleep = sleep  # injectable so tests of retries never wait
        self._limits = limits
        self._patience_seconds = patience_seconds

    def fetch_page(
        self, *, offset: int, limit: int, updated_from: datetime | None
    ) -> api_shape.Page:
        """One page, shaped into records. Retries what is transient.

        Raises ``PageTooLarge`` (the caller shrinks the page) or ``DataSourceError``.
        """
        params = api_shape.page_params(
            self.endpoint, offset=offset, limit=limit, updated_from=updated_from
        )
        return retry_transient(
            lambda: self._fetch_once(params, offset, limit),
            describe=f"data source {self.data_source_id}: page at offset {offset}",
            logger=self._logger,
            on_give_up=lambda problem: DataSourceError(
                self.data_source_id, f"the API kept failing at offset {offset}: {problem}"
            ),
            on_retry=self._count_retry,
            # The budget holds back as long as the retry waits, so a 429 is honoured
            # by whatever request comes next, not only by this retry.
            on_retry_after=self.limiter.push_back,
            sleep=self._sleep,
            patience_seconds=self._patience_seconds,
        )

    def _count_retry(self) -> None:
        self.counters.retries += 1

    def _fetch_once(self, params: list[tuple[str, str]], offset: int, limit: int) -> api_shape.Page:
        try:
            return self._fetch_and_shape(params, offset)
        except ReplyTooLarge as error:
            # Like a 413: fewer responses make a smaller reply, and if one response
            # alone is this large, nothing will read it.
            self._logger.warning(
                "data source %s: the reply for offset %d (limit %d) exceeded %d bytes "
                "once decoded%s",
                self.data_source_id,
                offset,
                limit,
                error.max_bytes,
                "; asking for fewer responses" if limit > 1 else "",
            )
            raise PageTooLarge(
                self.data_source_id,
                f"the reply for the response at offset {offset} alone exceeded "
                f"{error.max_bytes} bytes once decoded (the API's limit is 5 MB), so it "
                "cannot be read; report it to the app vendor",
            ) from None

    def _fetch_and_shape(self, params: list[tuple[str, str]], offset: int) -> api_shape.Page:
        response = self._get(params)
        if response.status_code == 401:
            self._raise_if_gateway_refused(response)
            # An expired or revoked access token: refresh once and try once more.
            rejected = _bearer_token(response.request)
            self.authenticator.refresh_after_rejection(rejected)
            response = self._get(params)
            if response.status_code == 401:
                self._raise_if_gateway_refused(response)
                raise self._failure(
                    response,
                    "the API refused a freshly refreshed access token (HTTP 401); "
                    "re-authorize this data source",
                )
        status = response.status_code
        if status == 200:
            return self._shape(response, offset)
        if status == 413:
            raise PageTooLarge(
                self.endpoint.data_source_id,
                f"the response at offset {offset} alone exceeds the API's 5 MB reply "
                "limit (HTTP 413), so it cannot be read; report it to the app vendor",
            )
        if status == 429:
            header = response.headers.get("Retry-After")
            # Named as sent: an absurd value is then visible next to the wait we chose.
            told = f", Retry-After {quote_server_text(header, limit=40)}" if header else ""
            raise TransientError(
                f"rate limited (HTTP 429{told})", retry_after=retry_after_seconds(response)
            )
        if status >= 500:
            raise TransientError(f"HTTP {status}{_trace(response)}")
        if status == 403:
            raise self._failure(
                response, "access denied (HTTP 403): the token's user may no longer view this form"
            )
        if status == 404:
            raise self._failure(
                response, "not found (HTTP 404): the data source was deleted or the URL is wrong"
            )
        raise self._failure(response, f"the API refused the request (HTTP {status})")

    def _get(self, params: list[tuple[str, str]]) -> requests.Response:
        self.counters.requests += 1
        request = requests.Request(
            "GET",
            self.endpoint.url,
            params=params,
            headers={"User-Agent": self._user_agent, "Accept": "application/json"},
            auth=self.authenticator,
        )
        with self.limiter.slot():
            return transport.send(
                self._session,
                request,
                limits=self._limits,
                timeout=(CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS),
            )

    def _shape(self, response: requests.Response, offset: int) -> api_shape.Page:
        content_type = response.headers.get("Content-Type")
        if content_type is not None and not _is_json(content_type):
            # A login or error page from a proxy or gateway in front of the API;
            # it usually passes, and the next try gets the page.
            what = "an HTML page" if "html" in content_type.lower() else "non-JSON content"
            raise TransientError(
                f"the API answered with {what} (Content-Type "
                f"{quote_server_text(content_type, limit=100)}){_trace(response)}"
            )
        try:
            payload = response.json()
        except ValueError:
            # Truncated bodies happen behind gateways; the same request usually works.
            raise TransientError(f"the reply body is not complete JSON{_trace(response)}") from None
        repeated_before = self.field_tally.repeated_ids
        try:
            page = api_shape.shape_page(payload, self.data_source_id, self.field_tally)
        except api_shape.PageFormatError as error:
            raise self._failure(
                response,
                f"the reply for offset {offset} could not be read: {quote_server_text(error)}",
            ) from None
        if repeated := self.field_tally.repeated_ids - repeated_before:
            self._logger.warning(
                "data source %s: the page at offset %d holds %d response ids more than once; "
                "each is emitted once",
                self.data_source_id,
                offset,
                repeated,
            )
        return page

    def _raise_if_gateway_refused(self, response: requests.Response) -> None:
        detail = api_shape.error_text(_json_or_none(response)) or ""
        if SCOPE_MISMATCH in detail.lower():
            raise self._failure(
                response,
                "the Atlassian gateway refused the token (HTTP 401, scope does not match): "
                "a site admin must enable the app's REST API in Administration > "
                "Connected apps > Smart Forms for Jira",
            )

    def _failure(self, response: requests.Response, problem: str) -> DataSourceError:
        detail = api_shape.error_text(_json_or_none(response))
        server_says = f"; the server says: {detail}" if detail else ""
        return DataSourceError(self.data_source_id, f"{problem}{server_says}{_trace(response)}")


def _is_json(content_type: str) -> bool:
    """application/json, or any JSON-based type (application/problem+json, text/json)."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type.endswith(("/json", "+json"))


def _json_or_none(response: requests.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return None


def _trace(response: requests.Response) -> str:
    trace_id = response.headers.get("atl-traceid")
    return f" (atl-traceid {quote_server_text(trace_id, limit=64)})" if trace_id else ""


def _bearer_token(request: requests.PreparedRequest | None) -> str | None:
    header = request.headers.get("Authorization", "") if request is not None else ""
    return header.removeprefix("Bearer ") or None
