"""The Emulator: data, tokens, faults and stats behind one local HTTP server.

Requests for data go through these steps, in order (docs/api-contract.md §3-§5):

1. ``latency`` seconds of sleep;
2. query validation (400 for a missing ``dataSourceId`` or a bad parameter);
3. the ``on_data_request`` callback, under no lock;
4. a persistent failure set for the data source (403, 404, 400, gateway 401);
5. a queued or random fault (5xx, 429, 413, reset, html, gzip; truncated, cut and
   dripped bodies come at 9);
6. the bearer token: 401 when missing, unknown, expired or revoked;
7. the data source: 404 when unknown, 403 when the token is another data source's;
8. the rate limit of the token's chain: 429 with ``Retry-After``;
9. the page, 413 when its body would exceed ``max_body_bytes``.

Paging misbehaviour the tap must survive (docs/api-contract.md §6), each off by default:

* ``omit_paging_fields``: replies carry no ``total``, ``offset`` or ``limit``;
* ``silent_page_cap=N``: a page never holds more than N responses, yet the reply
  echoes the ``limit`` asked for, so only a short page below ``total`` tells;
* ``ignore_offset``: every page is served from offset 0 (the reply still echoes
  the ``offset`` asked for).

They combine: ``silent_page_cap`` with ``omit_paging_fields`` is a capped server
that says nothing at all.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import json
import re
import threading
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from . import drift
from .clock import MonotonicClock, WallClock, utc_now
from .data import ATTACHMENT_URL_PREFIX, DRAW, DataSource, FormSpec
from .faults import FaultPlan
from .files import FILES_PATH, FileRequest, FileServer, Serving
from .ratelimit import ChainRateLimiter
from .server import RESET, EmulatorHTTPServer, Reply, error_reply, json_reply
from .stats import RequestLogEntry, Stats, StatsRecorder
from .timefmt import parse_instant, to_micros
from .tokens import OAuthError, TokenService
from .truth import SourceSnapshot, Truth, build_truth

APP_ID = "5f0e2d1c-3b4a-4c5d-8e6f-7a8b9c0d1e2f"
ENVIRONMENT_ID = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
DATA_PATH = f"/gateway/api/svc/jira/apps/{APP_ID}_{ENVIRONMENT_ID}/rest/v1/datasource"
TOKEN_PATH = "/oauth/token"
# Test-only controls (POST ?dataSourceId=...): issue an authorization code, or revoke
# every token chain of a data source.
ADMIN_CODE_PATH = "/_emulator/code"
ADMIN_REVOKE_PATH = "/_emulator/revoke"
ADMIN_PATHS = (ADMIN_CODE_PATH, ADMIN_REVOKE_PATH)
MAX_LIMIT = 500

DataRequestCallback = Callable[[str, int, int, int], None]
"""``callback(ds_id, offset, limit, request_number)``; the number counts from 1 per data source."""

_DIGITS = re.compile(r"[0-9]{1,9}")


@dataclass(frozen=True)
class AddedQuestion:
    """What ``Emulator.add_question`` did: the new question, and the response answering it."""

    question_id: str
    response_id: str


@dataclass(frozen=True)
class _Query:
    ds_id: str
    offset: int
    limit: int
    updated_from_us: int | None


def _first(params: Mapping[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[0] if values else None


def _non_negative(text: str | None, default: int) -> int | None:
    if text is None:
        return default
    return int(text) if _DIGITS.fullmatch(text) else None


class Emulator:
    """A local Smart Forms Data Source API: one data source per ``FormSpec``.

    ``omit_paging_fields``, ``silent_page_cap`` and ``ignore_offset`` make its
    paging misbehave as the module docstring describes. ``token_latency`` delays
    each successful token reply by that many seconds after the grant (the chain has
    rotated, the reply is on its way): the window in which a client that exits
    loses its new token. Construct (data and each
    data source's first token chain are made here), then ``start()``; or use it as
    a context manager. Every method is thread-safe and may be called while a
    client is paging.
    """

    def __init__(
        self,
        forms: Sequence[FormSpec] = (FormSpec(),),
        *,
        client_id: str = "emu-client",
        client_secret: str = "emu-secret",
        access_token_ttl: float = 3600.0,
        reuse_window: float = 600.0,
        rate_limit_per_minute: int | None = 100,
        latency: float = 0.0,
        token_latency: float = 0.0,
        max_body_bytes: int = 5_000_000,
        omit_paging_fields: bool = False,
        ignore_updated_from: bool = False,
        ignore_offset: bool = False,
        silent_page_cap: int | None = None,
        omit_refresh_token_in_reply: bool = False,
        api_drift: bool = False,
        drip_interval: float = 0.5,
        gzip_bomb_bytes: int = 64 * 1024 * 1024,
        unsorted: bool = False,
        epoch_timestamps: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: MonotonicClock = time.monotonic,
        wall_clock: WallClock = utc_now,
    ) -> None:
        """``unsorted`` serves responses out of createdAt, id order (``DataSource.unsort``);
        ``epoch_timestamps`` renders the form's and responses' timestamps as epoch
        milliseconds (``DataSource.use_epoch_timestamps``). Both change only how the
        API shows the data, never the ground truth."""
        if not forms:
            raise ValueError("at least one FormSpec is needed")
        self.client_id = client_id
        self.client_secret = client_secret
        self.latency = latency
        self.token_latency = token_latency
        self.max_body_bytes = max_body_bytes
        self.omit_paging_fields = omit_paging_fields
        self.ignore_updated_from = ignore_updated_from
        self.drip_interval = drip_interval
        self.gzip_bomb_bytes = gzip_bomb_bytes
        if silent_page_cap is not None and silent_page_cap < 1:
            raise ValueError("silent_page_cap must be at least 1")
        self.ignore_offset = ignore_offset
        self.silent_page_cap = silent_page_cap
        self._host = host
        self._port = port
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._sources: dict[str, DataSource] = {}
        self.api_drift = api_drift
        for index, spec in enumerate(forms):
            source = DataSource(spec, index)
            if api_drift:
                source.drift()
            if unsorted:
                source.unsort()
            if epoch_timestamps:
                source.use_epoch_timestamps()
            self._sources[source.id] = source
        self._recorder = StatsRecorder()
        self._limiter = ChainRateLimiter(rate_limit_per_minute)
        self._faults = FaultPlan()
        self._tokens = TokenService(
            client_id=client_id,
            client_secret=client_secret,
            access_token_ttl=access_token_ttl,
            reuse_window=reuse_window,
            rotate=not omit_refresh_token_in_reply,
            clock=clock,
            recorder=self._recorder,
        )
        self._initial_refresh_tokens = {
            ds_id: self._tokens.start_chain(ds_id) for ds_id in self._sources
        }
        self._callback: DataRequestCallback | None = None
        self._files = FileServer()
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Emulator:
        """Listen on ``host``:``port`` (0: a free port) and serve in a daemon thread."""
        if self._server is not None:
            raise RuntimeError("emulator already started")
        server = EmulatorHTTPServer((self._host, self._port), self)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"smartforms-emulator-{server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every connection. Safe to call twice."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ addresses

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("emulator not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}{TOKEN_PATH}"

    @property
    def data_source_ids(self) -> list[str]:
        return list(self._sources)

    def data_source_url(self, ds_id: str) -> str:
        """The data source URL as the Data Source modal shows it (any id, known or not)."""
        return f"{self.base_url}{DATA_PATH}?dataSourceId={quote(ds_id, safe='')}"

    # ------------------------------------------------------------------ tokens

    def refresh_token(self, ds_id: str) -> str:
        """The first refresh token of the data source's chain made at construction."""
        return self._initial_refresh_tokens[self._known(ds_id)]

    def authorization_code(self, ds_id: str) -> str:
        """A one-time code (valid 300 s) whose exchange starts a new chain for ``ds_id``."""
        return self._tokens.issue_code(self._known(ds_id))

    def revoke_chain(self, ds_id: str) -> None:
        """Revoke every token chain of the data source: its tokens all fail from now on."""
        self._tokens.revoke_data_source(self._known(ds_id))

    def tap_config(self, **overrides: Any) -> dict[str, Any]:
        """A ready tap config for every data source, merged with ``overrides``."""
        config: dict[str, Any] = {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "oauth_token_url": self.token_url,
            "data_sources": [
                {"url": self.data_source_url(ds_id), "refresh_token": self.refresh_token(ds_id)}
                for ds_id in self._sources
            ],
        }
        config.update(overrides)
        return config

    # ------------------------------------------------------------------ data and edits

    def truth(self, updated_since: datetime | None = None) -> Truth:
        """Ground-truth records per stream for the current data (see ``truth.py``)."""
        since_us = None
        if updated_since is not None:
            if updated_since.tzinfo is None:
                raise ValueError("updated_since must be an aware datetime")
            since_us = to_micros(updated_since)
        with self._lock:
            snapshots = [
                SourceSnapshot(ds_id, source.form, list(source.responses))
                for ds_id, source in self._sources.items()
            ]
        truth = build_truth(snapshots, since_us, drift.PAGE_FIELDS if self.api_drift else None)
        if self._server is not None:
            for record in truth["attachments"]:
                url = record["download_url"]
                if isinstance(url, str) and url.startswith(ATTACHMENT_URL_PREFIX):
                    record["download_url"] = self.files_url + url.removeprefix(
                        ATTACHMENT_URL_PREFIX
                    )
        return truth

    # ------------------------------------------------------------------ attachment files

    @property
    def files_url(self) -> str:
        return f"{self.base_url}{FILES_PATH}"

    @property
    def file_requests(self) -> list[FileRequest]:
        return list(self._files.requests)

    def attach_file(
        self,
        ds_id: str,
        response_id: str,
        file_name: str,
        *,
        size: int = 1000,
        serving: Serving = "ok",
        host: str | None = None,
    ) -> str:
        """Attach one more file to the response's first answer (its updatedAt stays)
        and return its key. ``host`` serves its link on another name of this emulator."""
        key = f"extra-{len(self._attachment_sizes())}-{response_id}"
        url = f"{ATTACHMENT_URL_PREFIX}{key}"
        if host is not None:
            port = urlsplit(self.base_url).port
            url = f"http://{host}:{port}{FILES_PATH}{key}"
        attachment = {"id": f"att-{key}", "fileName": file_name, "size": size, "downloadUrl": url}
        with self._lock:
            source = self._sources[self._known(ds_id)]
            index = source.index_of(response_id)
            old = source.responses[index]
            answers = [dict(answer) for answer in old.doc.get("answers") or []]
            if not answers:
                raise ValueError(f"response {response_id!r} has no answer to attach a file to")
            answers[0]["attachments"] = [*(answers[0].get("attachments") or []), attachment]
            source.responses[index] = dataclasses.replace(old, doc={**old.doc, "answers": answers})
        self._files.serve_as(key, serving)
        return key

    def _attachment_sizes(self) -> dict[str, int]:
        """Every attachment's file key and announced size, from the current documents."""
        with self._lock:
            docs = [r.doc for source in self._sources.values() for r in source.responses]
        sizes: dict[str, int] = {}
        for doc in docs:
            for answer in doc.get("answers") or []:
                for attachment in (
                    answer.get("attachments") if isinstance(answer, dict) else None
                ) or []:
                    url = attachment.get("downloadUrl") if isinstance(attachment, dict) else None
                    if isinstance(url, str) and isinstance(attachment.get("size"), int):
                        sizes[unquote(url.rsplit("/", 1)[-1])] = attachment["size"]
        return sizes

    def prerender(self) -> None:
        """Encode every document now (normally done on first serve, then cached), so the
        first pass over the data is served as fast as later ones."""
        with self._lock:
            forms = [source.form for source in self._sources.values()]
            responses = [r for source in self._sources.values() for r in source.responses]
        for form in forms:
            _ = form.encoded
        for response in responses:
            _ = response.encoded

    def response_ids(self, ds_id: str) -> list[str]:
        """Response ids in API order (createdAt, then id)."""
        with self._lock:
            return [r.id for r in self._sources[self._known(ds_id)].responses]

    def insert_response(self, ds_id: str) -> str:
        """Append a new response (createdAt = updatedAt = now); returns its id."""
        with self._lock:
            return self._sources[self._known(ds_id)].insert(self._wall_clock).id

    def update_response(self, ds_id: str, response_id: str) -> None:
        """Change some answer values and set updatedAt to now; the position stays."""
        with self._lock:
            self._sources[self._known(ds_id)].update(response_id, self._wall_clock)

    def delete_response(self, ds_id: str, response_id: str) -> None:
        """Remove a response; every later one moves one place forward."""
        with self._lock:
            self._sources[self._known(ds_id)].delete(response_id)

    def delete_question(self, ds_id: str, question_id: str) -> None:
        """Remove a question from the data source's form."""
        with self._lock:
            self._sources[self._known(ds_id)].delete_question(question_id)

    def add_question(
        self,
        ds_id: str,
        label: str,
        question_type: str = "text",
        *,
        response_id: str | None = None,
        value: Any = DRAW,
    ) -> AddedQuestion:
        """Add a question (a new id, ``label``, ``question_type``) at the end of the data
        source's form, as someone editing the form does, and answer it on one existing
        response: ``response_id``, or the first in API order. The answer holds ``value``
        (None: a null value), or one drawn for the type. The form's and that response's
        updatedAt become now, so an incremental sync (``updatedFrom``) reads the
        response again; responses inserted later answer the question too."""
        with self._lock:
            source = self._sources[self._known(ds_id)]
            if response_id is None:
                if not source.responses:
                    raise ValueError(f"data source {ds_id} has no response to answer it")
                response_id = source.responses[0].id
            question_id = source.add_question(
                label, question_type, response_id, value, self._wall_clock
            )
        return AddedQuestion(question_id, response_id)

    def replace_attachments(self, ds_id: str, response_id: str) -> None:
        """Replace every file of a response by new ones (new ids); updatedAt becomes now."""
        with self._lock:
            self._sources[self._known(ds_id)].replace_attachments(response_id, self._wall_clock)

    def on_data_request(self, callback: DataRequestCallback | None) -> None:
        """Call ``callback(ds_id, offset, limit, request_number)`` before serving each
        valid data request, under no lock (it may edit data); None removes it."""
        self._callback = callback

    # ------------------------------------------------------------------ faults

    def queue_fault(self, ds_id: str | None, kind: str, count: int = 1) -> None:
        """Fail the next ``count`` data requests of ``ds_id`` (None: any); kinds in
        ``faults.DATA_FAULTS``."""
        self._faults.queue(ds_id, kind, count)

    def queue_token_fault(self, kind: str, count: int = 1) -> None:
        """Fail the next ``count`` token requests; kinds in ``faults.TOKEN_FAULTS``."""
        self._faults.queue_token(kind, count)

    def set_data_source_failure(self, ds_id: str, kind: str | None) -> None:
        """Fail every data request of ``ds_id``: ``forbidden`` (403), ``not_found`` (404),
        ``bad_request`` (400), ``scope_mismatch`` (gateway 401); None stops it."""
        self._faults.set_failure(ds_id, kind)

    def random_faults(
        self, p_server_error: float = 0.0, p_truncated: float = 0.0, seed: int = 0
    ) -> None:
        """Fail data requests at random (seeded): 5xx with ``p_server_error``,
        a truncated 200 body with ``p_truncated``."""
        self._faults.set_random(p_server_error, p_truncated, seed)

    # ------------------------------------------------------------------ stats

    @property
    def stats(self) -> Stats:
        """A snapshot of every counter (see ``stats.Stats``)."""
        return self._recorder.snapshot(*self._limiter.windows())

    # ------------------------------------------------------------------ HTTP backend

    def handle_get(self, path: str, query: str, headers: dict[str, str]) -> Reply:
        if path == DATA_PATH:
            return self._data_request(query, headers)
        if path.startswith(FILES_PATH):
            key = unquote(path.removeprefix(FILES_PATH))
            return self._files.reply(key, headers, self._attachment_sizes().get(key))
        if path == TOKEN_PATH:
            return error_reply(405, "method_not_allowed", "Use POST for the token endpoint.")
        return error_reply(404, "not_found", f"No resource at {path}")

    def handle_post(self, path: str, query: str, headers: dict[str, str], body: bytes) -> Reply:
        if path == TOKEN_PATH:
            reply = self._token_request(headers, body)
            self._recorder.token_reply(reply.status)
            return reply
        if path == DATA_PATH:
            return error_reply(405, "method_not_allowed", "Use GET for the data source.")
        if path in ADMIN_PATHS:
            return self._admin_request(path, query)
        return error_reply(404, "not_found", f"No resource at {path}")

    def _admin_request(self, path: str, query: str) -> Reply:
        """What a person at the keyboard does at Atlassian: authorize (a code) or lose
        the authorization (a revoked chain), for ``python -m tap_smartforms_emulator`` users."""
        ds_id = _first(parse_qs(query), "dataSourceId") or ""
        if ds_id not in self._sources:
            return error_reply(404, "not_found", f"Data source {ds_id} not found")
        if path == ADMIN_CODE_PATH:
            return json_reply(200, {"code": self.authorization_code(ds_id)})
        self.revoke_chain(ds_id)
        return json_reply(200, {"revoked": ds_id})

    # ------------------------------------------------------------------ data requests

    def _data_request(self, query: str, headers: dict[str, str]) -> Reply:
        arrived = self._clock()
        params = parse_qs(query, keep_blank_values=True)
        ds_id = _first(params, "dataSourceId") or ""
        number = self._recorder.data_request(ds_id)
        if self.latency > 0:
            time.sleep(self.latency)
        parsed = self._parse_query(params)
        if isinstance(parsed, Reply):
            return self._logged(arrived, ds_id, -1, -1, parsed)
        callback = self._callback
        if callback is not None:
            try:
                callback(parsed.ds_id, parsed.offset, parsed.limit, number)
            except Exception as error:  # reported through stats
                self._recorder.callback_error(error)
        reply, rate_limited = self._serve(parsed, headers)
        return self._logged(arrived, ds_id, parsed.offset, parsed.limit, reply, rate_limited)

    def _logged(
        self,
        arrived: float,
        ds_id: str,
        offset: int,
        limit: int,
        reply: Reply,
        rate_limited: bool = False,
    ) -> Reply:
        entry = RequestLogEntry(arrived, ds_id, offset, limit, reply.status)
        self._recorder.data_reply(entry, rate_limited)
        return reply

    def _parse_query(self, params: Mapping[str, list[str]]) -> _Query | Reply:
        ds_id = _first(params, "dataSourceId")
        if not ds_id:
            return error_reply(400, "bad_request", "Query parameter dataSourceId is required.")
        limit = _non_negative(_first(params, "limit"), MAX_LIMIT)
        if limit is None or not 1 <= limit <= MAX_LIMIT:
            return error_reply(
                400, "bad_request", f"limit must be an integer from 1 to {MAX_LIMIT}."
            )
        offset = _non_negative(_first(params, "offset"), 0)
        if offset is None:
            return error_reply(400, "bad_request", "offset must be an integer >= 0.")
        updated_from = _first(params, "updatedFrom")
        since_us = None
        if updated_from is not None:
            try:
                since_us = to_micros(parse_instant(updated_from))
            except ValueError:
                return error_reply(
                    400, "bad_request", f"updatedFrom is not an ISO-8601 instant: {updated_from!r}"
                )
        if self.ignore_updated_from:
            since_us = None
        return _Query(ds_id, offset, limit, since_us)

    def _serve(self, query: _Query, headers: dict[str, str]) -> tuple[Reply, bool]:
        """The reply to a valid data request, and whether the rate limiter refused it."""
        ds_id = query.ds_id
        failure = self._faults.failure(ds_id)
        if failure is not None:
            return _failure_reply(failure, ds_id), False
        fault = self._faults.next_fault(ds_id)
        if fault is not None and fault not in _PAGE_FAULTS:
            return _fault_reply(fault, self.gzip_bomb_bytes), False
        chain = None
        authorization = headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            chain = self._tokens.authenticate(token.strip())
        if chain is None:
            return json_reply(
                401, {"code": 401, "message": "Unauthorized"}, ("WWW-Authenticate", "Bearer")
            ), False
        source = self._sources.get(ds_id)
        if source is None:
            return error_reply(404, "not_found", f"Data source {ds_id} not found"), False
        if chain.data_source_id != ds_id:
            return error_reply(
                403, "forbidden", f"This token does not give access to data source {ds_id}."
            ), False
        wait = self._limiter.admit(chain.id, ds_id, self._clock())
        if wait is not None:
            return error_reply(
                429,
                "rate_limited",
                "Too many requests for this token; retry later.",
                ("Retry-After", str(wait)),
            ), True
        body = self._page_body(source, query)
        if len(body) > self.max_body_bytes:
            return error_reply(
                413,
                "payload_too_large",
                f"The page would be {len(body)} bytes, over {self.max_body_bytes}; lower limit.",
            ), False
        if fault == "truncated":
            return Reply(200, body[: len(body) // 2]), False
        if fault == "cut":
            return Reply(200, body, delivery="cut"), False
        if fault == "drip":
            return Reply(200, body, delivery="drip", drip_interval=self.drip_interval), False
        return Reply(200, body), False

    def _page_body(self, source: DataSource, query: _Query) -> bytes:
        offset = 0 if self.ignore_offset else query.offset
        served = query.limit
        if self.silent_page_cap is not None:
            served = min(served, self.silent_page_cap)
        with self._lock:
            total, page = source.page(offset, served, query.updated_from_us)
            form = source.form
        head = b'{"form":'
        if self.api_drift:
            head = b"{" + json.dumps(drift.PAGE_FIELDS)[1:-1].encode() + b',"form":'
        parts = [head, form.encoded, b',"responses":[', b",".join(r.encoded for r in page)]
        if self.omit_paging_fields:
            parts.append(b"]}")
        else:
            parts.append(
                b'],"total":%d,"offset":%d,"limit":%d}' % (total, query.offset, query.limit)
            )
        # Download links point at this emulator, wherever it listens.
        return b"".join(parts).replace(ATTACHMENT_URL_PREFIX.encode(), self.files_url.encode())

    # ------------------------------------------------------------------ token requests

    def _token_request(self, headers: dict[str, str], body: bytes) -> Reply:
        fault = self._faults.next_token_fault()
        if fault == "reset":
            return RESET
        if fault == "redirect":
            return Reply(
                307,
                b'{"moved": true}',
                (("Location", f"{self.base_url}{TOKEN_PATH}?redirected=1"),),
            )
        if fault is not None and fault != "lost_reply":
            return _token_fault_reply(fault)
        params = _token_params(headers, body)
        if params is None:
            return json_reply(
                400, {"error": "invalid_request", "error_description": "Unreadable request body."}
            )
        try:
            payload = self._tokens.grant(params)
        except OAuthError as error:
            return json_reply(error.status, error.body())
        if fault == "lost_reply":
            return RESET
        if self.token_latency > 0:
            time.sleep(self.token_latency)
        return json_reply(200, payload, ("Cache-Control", "no-store"))

    # ------------------------------------------------------------------ helpers

    def _known(self, ds_id: str) -> str:
        if ds_id not in self._sources:
            raise KeyError(f"unknown data source {ds_id!r}; known: {list(self._sources)}")
        return ds_id


def _token_params(headers: Mapping[str, str], body: bytes) -> dict[str, str] | None:
    """The token request's parameters from a JSON or form body (None if unreadable)."""
    content_type = headers.get("content-type", "").lower()
    text = body.decode("utf-8", errors="replace")
    params: dict[str, str] = {}
    if "json" in content_type or (not content_type and text.lstrip().startswith("{")):
        try:
            decoded = json.loads(text) if text.strip() else {}
        except ValueError:
            return None
        if not isinstance(decoded, dict):
            return None
        params = {str(k): v for k, v in decoded.items() if isinstance(v, str)}
    else:
        params = {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}
    authorization = headers.get("authorization", "")
    if authorization.lower().startswith("basic "):
        try:
            decoded_pair = base64.b64decode(authorization[6:].strip()).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, _, password = decoded_pair.partition(":")
        params.setdefault("client_id", user)
        params.setdefault("client_secret", password)
    return params


_SERVER_ERROR_BODIES: dict[str, tuple[str, str]] = {
    "500": ("internal_server_error", "Something went wrong while generating the data."),
    "503": ("service_unavailable", "The service is temporarily unavailable."),
    "504": ("gateway_timeout", "Data generation took longer than 25 s."),
}


# Faults that spoil the page itself, so come after the checks a page needs (step 9).
_PAGE_FAULTS = ("truncated", "cut", "drip")
_GZIP = ("Content-Encoding", "gzip")
_RETRY_AFTER = {"429": "1", "retry_after_absurd": "1000000000", "retry_after_inf": "inf"}


@functools.lru_cache(maxsize=4)
def _gzipped_zeros(size: int) -> bytes:
    """``size`` zero bytes, gzipped (about a thousandth of the size), made in pieces
    so memory holds the compressed bytes only."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip container
    piece = bytes(min(size, 1024 * 1024))
    parts = [
        compressor.compress(piece[: min(len(piece), size - done)])
        for done in range(0, size, len(piece) or 1)
    ]
    return b"".join([*parts, compressor.flush()])


def _fault_reply(kind: str, gzip_bomb_bytes: int) -> Reply:
    if kind == "reset":
        return RESET
    if kind in _RETRY_AFTER:
        return error_reply(
            429, "rate_limited", "Too many requests.", ("Retry-After", _RETRY_AFTER[kind])
        )
    if kind == "html":
        page = b"<!DOCTYPE html><html><body><h1>Please sign in</h1></body></html>"
        return Reply(200, page, content_type="text/html; charset=utf-8")
    if kind == "gzip_corrupt":
        return Reply(200, b"this body is not gzip at all", (_GZIP,))
    if kind == "gzip_bomb":
        return Reply(200, _gzipped_zeros(gzip_bomb_bytes), (_GZIP,))
    if kind == "413":
        return error_reply(413, "payload_too_large", "The response would exceed 5 MB.")
    if kind == "502":
        # Gateways answer with HTML, not JSON: the client must cope.
        return Reply(
            502,
            b"<html><body><h1>502 Bad Gateway</h1></body></html>",
            content_type="text/html; charset=utf-8",
        )
    error, message = _SERVER_ERROR_BODIES[kind]
    return error_reply(int(kind), error, message)


def _token_fault_reply(kind: str) -> Reply:
    status = int(kind)
    headers = (("Retry-After", "1"),) if status == 429 else ()
    description = "Rate limit exceeded." if status == 429 else "Temporary failure."
    error = "rate_limited" if status == 429 else "server_error"
    return json_reply(status, {"error": error, "error_description": description}, *headers)


def _failure_reply(kind: str, ds_id: str) -> Reply:
    if kind == "forbidden":
        return error_reply(403, "forbidden", "You no longer have permission to view this form.")
    if kind == "not_found":
        return error_reply(404, "not_found", f"Data source {ds_id} not found")
    if kind == "bad_request":
        return error_reply(400, "bad_request", f"Invalid data source {ds_id}.")
    return json_reply(
        401,
        {"code": 401, "message": "Unauthorized; scope does not match"},
        ("x-failure-category", "FAILURE_CATEGORY_SCOPE_MISMATCH"),
    )
