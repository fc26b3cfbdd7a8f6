"""Every HTTP request of the tap, bounded in time and in size.

Why a module of its own: ``requests``' ``timeout`` bounds each socket read, not a
request. A server (or a broken proxy) that sends one byte every few seconds keeps
a request alive for ever, while the headers come as well as during the body. And
nothing bounds a reply's size: a few kilobytes of gzip can inflate to gigabytes.

**Deadline.** The sessions made by ``new_session`` open their connections through
a subclass that, when a request starts on it, attaches itself to the calling
thread's watch. A ``threading.Timer`` fires at the deadline and shuts that
connection's socket down. ``shutdown(SHUT_RDWR)`` is the one call that wakes a
``recv`` blocked in another thread (``close`` does not, on Linux) and it leaves
the file descriptor to its owner, so the number cannot be reused under it. The
blocked read sees end-of-file, urllib3 raises, and ``send`` reports "no complete
reply within N s". One mechanism for both phases; the others fall short:
shrinking the socket timeout as the deadline nears cannot reach the header phase
(http.client reads the status line and headers in its own loop), a helper thread
abandoned at the deadline leaves the socket busy, and signals work only in the
main thread, while data sources are fetched by worker threads. Connecting is
bounded by the connect timeout on top (a socket does not exist to cut before
then). Written against urllib3 2.x (``HTTPConnection.request``/``connect``);
SOCKS proxies use their own connection classes and get no deadline.

**Size.** The body is read with ``stream=True`` in chunks of *decoded* bytes and
abandoned once past the cap. urllib3 (2.6 and later) inflates no more than a read
asks for, so even one chunk of a gzip bomb stays one chunk.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from typing_extensions import override
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import PoolManager, ProxyManager

from tap_smartforms.retry import TransientError

# Headers and body of one reply, all told. The API gives up generating a page after
# 25 s [sibling]; the rest is transfer time for at most 5 MB, with room to spare.
DEFAULT_DEADLINE_SECONDS = 120.0
# The API's replies are at most 5 MB (else 413) [sibling]; anything far beyond is
# a broken server or a decompression bomb, not a page.
DEFAULT_MAX_REPLY_BYTES = 32 * 1024 * 1024
_CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class ReplyLimits:
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS
    max_bytes: int = DEFAULT_MAX_REPLY_BYTES


DEFAULT_LIMITS = ReplyLimits()


class ReplyTooLarge(Exception):
    """The reply's decoded body passed ``max_bytes``; it was abandoned unread."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"the reply exceeded {max_bytes} bytes once decoded")
        self.max_bytes = max_bytes


def new_session() -> requests.Session:
    """A session whose requests ``send`` can hold to a deadline."""
    session = requests.Session()
    adapter = _WatchedAdapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def send(
    session: requests.Session,
    request: requests.Request,
    *,
    limits: ReplyLimits,
    timeout: float | tuple[float, float],
    allow_redirects: bool = True,
) -> requests.Response:
    """Send ``request`` and read its whole reply, within ``limits``.

    Raises ``TransientError`` when no complete reply came (connection refused,
    reset or cut, a body that does not decode, the deadline passed) and
    ``ReplyTooLarge``. The response's ``content``, ``text`` and ``json()`` are
    those of the body read. Preparing comes first, outside the deadline: it runs
    the authenticator, whose token refresh has a deadline of its own.
    ``allow_redirects=False`` returns a 3xx as it is: a redirect followed with a body
    (307, 308) would send that body, secrets and all, to wherever it points.
    """
    prepared = session.prepare_request(request)
    # Proxies and CA bundles from the environment, as ``Session.request`` would.
    environment = session.merge_environment_settings(prepared.url, {}, True, None, None)
    with _Watch(limits.deadline_seconds) as watch:
        try:
            response = session.send(
                prepared, timeout=timeout, allow_redirects=allow_redirects, **environment
            )
            try:
                # What ``response.content`` would hold, read within the cap instead.
                response._content = _read_capped(response, limits.max_bytes)
            finally:
                response.close()
        except _NO_COMPLETE_REPLY as error:
            if watch.expired:
                raise TransientError(
                    f"no complete reply within {limits.deadline_seconds:g} s"
                ) from None
            raise TransientError(_no_complete_reply(error)) from None
    return response


@contextlib.contextmanager
def streamed(
    session: requests.Session,
    request: requests.Request,
    *,
    deadline_seconds: float,
    timeout: float | tuple[float, float],
) -> Iterator[requests.Response]:
    """Send ``request`` and hand over its reply unread, for the caller to read in
    chunks (``iter_content``) inside the ``with``: a file need not fit in memory.
    The deadline covers the whole ``with``; no complete reply raises
    ``TransientError`` as in ``send``, also while the caller reads the body."""
    prepared = session.prepare_request(request)
    environment = session.merge_environment_settings(prepared.url, {}, True, None, None)
    with _Watch(deadline_seconds) as watch:
        try:
            response = session.send(prepared, timeout=timeout, **environment)
            try:
                yield response
            finally:
                response.close()
        except _NO_COMPLETE_REPLY as error:
            if watch.expired:
                raise TransientError(f"no complete reply within {deadline_seconds:g} s") from None
            raise TransientError(_no_complete_reply(error)) from None


# Connection refused or reset, timed out, or closed before the announced body was
# all there (ChunkedEncodingError, despite its name, is any body cut short), or a
# body whose Content-Encoding does not decode.
_NO_COMPLETE_REPLY = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


def _no_complete_reply(error: Exception) -> str:
    if isinstance(error, requests.exceptions.ContentDecodingError):
        return "the reply body could not be decompressed (ContentDecodingError)"
    return f"no complete reply ({type(error).__name__})"


def _read_capped(response: requests.Response, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(_CHUNK_BYTES):
        size += len(chunk)
        if size > max_bytes:
            raise ReplyTooLarge(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


# ------------------------------------------------------------------ the watch

_current = threading.local()


class _Watch:
    """The deadline of the requests the current thread makes inside ``with``."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._lock = threading.Lock()
        self._connection: HTTPConnection | None = None
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._outer: _Watch | None = None

    def __enter__(self) -> _Watch:
        self._outer = getattr(_current, "watch", None)
        _current.watch = self
        self._timer.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._timer.cancel()
        with self._lock:
            self._connection = None
        _current.watch = self._outer

    def attach(self, connection: HTTPConnection) -> None:
        with self._lock:
            self._connection = connection
            expired = self.expired
        if expired:
            _cut(connection)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            connection = self._connection
        if connection is not None:
            _cut(connection)


def _cut(connection: HTTPConnection) -> None:
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed: nothing left to wake
            sock.shutdown(socket.SHUT_RDWR)


def _attach_to_watch(connection: HTTPConnection) -> None:
    watch: _Watch | None = getattr(_current, "watch", None)
    if watch is not None:
        watch.attach(connection)


class _WatchedHTTPConnection(HTTPConnection):
    @override
    def connect(self) -> None:
        super().connect()
        _attach_to_watch(self)  # cut at once if the deadline passed while connecting

    @override
    def request(self, *args: Any, **kwargs: Any) -> None:
        # Every request, also on a kept-alive connection that connects no more.
        _attach_to_watch(self)
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    @override
    def connect(self) -> None:
        super().connect()
        _attach_to_watch(self)

    @override
    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach_to_watch(self)
        super().request(*args, **kwargs)


class _WatchedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_WATCHED_POOLS = {"http": _WatchedHTTPConnectionPool, "https": _WatchedHTTPSConnectionPool}


class _WatchedAdapter(HTTPAdapter):
    @override
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self._watch_pools(self.poolmanager)

    @override
    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> PoolManager:
        manager: PoolManager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if isinstance(manager, ProxyManager):  # not SOCKS: see the module docstring
            self._watch_pools(manager)
        return manager

    @staticmethod
    def _watch_pools(manager: PoolManager) -> None:
        manager.pool_classes_by_scheme = dict(_WATCHED_POOLS)
