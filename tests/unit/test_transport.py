"""transport.send: a deadline on the whole reply (headers and body) and a cap on its size.

A tiny raw-socket server plays the misbehaving API, so the real requests/urllib3
stack runs; deadlines are a second or less, so nothing here waits long.
"""

from __future__ import annotations

import gzip
import logging
import socketserver
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import requests

from tap_smartforms import transport
from tap_smartforms.auth import OAuthClient, RefreshTokenAuthenticator
from tap_smartforms.errors import DataSourceError
from tap_smartforms.retry import TransientError
from tap_smartforms.transport import ReplyLimits, ReplyTooLarge

DRIP_INTERVAL = 0.1
JSON_BODY = b'{"ok": true}'


def _head(body_length: int, *extra: str) -> bytes:
    lines = ["HTTP/1.1 200 OK", "Content-Type: application/json", f"Content-Length: {body_length}"]
    return ("\r\n".join([*lines, *extra]) + "\r\n\r\n").encode()


Behaviour = Callable[[socketserver.StreamRequestHandler, threading.Event], None]


def _answer(body: bytes, *extra: str) -> Behaviour:
    def behave(handler: socketserver.StreamRequestHandler, stop: threading.Event) -> None:
        handler.wfile.write(_head(len(body), *extra) + body)

    return behave


def _drip(data: bytes) -> Behaviour:
    def behave(handler: socketserver.StreamRequestHandler, stop: threading.Event) -> None:
        for index in range(len(data)):
            if stop.wait(DRIP_INTERVAL):
                return
            handler.wfile.write(data[index : index + 1])

    return behave


def _head_then_drip(body: bytes) -> Behaviour:
    def behave(handler: socketserver.StreamRequestHandler, stop: threading.Event) -> None:
        handler.wfile.write(_head(len(body)))
        _drip(body)(handler, stop)

    return behave


def _silent(handler: socketserver.StreamRequestHandler, stop: threading.Event) -> None:
    stop.wait(30)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.behaviours: list[Behaviour] = []
        self.stop = threading.Event()
        self.requests = 0

    def handle_error(self, request: object, client_address: object) -> None:
        """Quiet: the client cutting a connection is what these tests do."""

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/data"


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        server = self.server
        assert isinstance(server, _Server)
        while not server.stop.is_set():  # keep-alive: one behaviour per request
            line = self.rfile.readline()
            if not line:
                return
            while self.rfile.readline() not in (b"\r\n", b""):
                pass
            server.requests += 1
            behave = server.behaviours.pop(0) if server.behaviours else _answer(JSON_BODY)
            behave(self, server.stop)
            self.wfile.flush()


@pytest.fixture
def server() -> Iterator[_Server]:
    served = _Server()
    thread = threading.Thread(target=served.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield served
    served.stop.set()
    served.shutdown()
    served.server_close()
    thread.join(timeout=5)


def _send(
    server: _Server, limits: ReplyLimits, session: requests.Session | None = None
) -> requests.Response:
    return transport.send(
        session or transport.new_session(),
        requests.Request("GET", server.url),
        limits=limits,
        timeout=(5.0, 10.0),  # far longer than the deadline: only the deadline can end a drip
    )


def test_a_complete_reply_is_read_whole(server: _Server):
    response = _send(server, ReplyLimits(deadline_seconds=5))
    assert response.status_code == 200
    assert response.json() == {"ok": True}


def test_a_body_dripped_past_the_deadline_ends_the_request_at_the_deadline(server: _Server):
    server.behaviours.append(_head_then_drip(b"x" * 200))
    started = time.monotonic()
    with pytest.raises(TransientError, match=r"^no complete reply within 0\.5 s$"):
        _send(server, ReplyLimits(deadline_seconds=0.5))
    assert 0.5 <= time.monotonic() - started < 3


def test_headers_dripped_past_the_deadline_end_the_request_at_the_deadline(server: _Server):
    server.behaviours.append(_drip(_head(10) + b"0123456789"))
    started = time.monotonic()
    with pytest.raises(TransientError, match=r"^no complete reply within 0\.5 s$"):
        _send(server, ReplyLimits(deadline_seconds=0.5))
    assert 0.5 <= time.monotonic() - started < 3


def test_a_server_that_never_answers_ends_the_request_at_the_deadline(server: _Server):
    server.behaviours.append(_silent)
    started = time.monotonic()
    with pytest.raises(TransientError, match=r"within 0\.5 s"):
        _send(server, ReplyLimits(deadline_seconds=0.5))
    assert time.monotonic() - started < 3


def test_a_kept_alive_connection_is_held_to_the_deadline_too(server: _Server):
    session = transport.new_session()
    assert _send(server, ReplyLimits(deadline_seconds=5), session).json() == {"ok": True}
    server.behaviours.append(_head_then_drip(b"y" * 200))
    started = time.monotonic()
    with pytest.raises(TransientError, match=r"within 0\.5 s"):
        _send(server, ReplyLimits(deadline_seconds=0.5), session)
    assert time.monotonic() - started < 3
    # The session stays usable: the cut connection is replaced.
    assert _send(server, ReplyLimits(deadline_seconds=5), session).json() == {"ok": True}


def test_a_slow_reply_within_the_deadline_is_read_whole(server: _Server):
    server.behaviours.append(_head_then_drip(JSON_BODY))  # 12 bytes, about 1.2 s
    response = _send(server, ReplyLimits(deadline_seconds=10))
    assert response.json() == {"ok": True}


def test_a_reply_larger_than_the_cap_is_abandoned(server: _Server):
    server.behaviours.append(_answer(b"[" + b"0," * 600_000 + b"0]"))
    with pytest.raises(ReplyTooLarge, match="exceeded 1000000 bytes"):
        _send(server, ReplyLimits(max_bytes=1_000_000))


def test_a_gzip_bomb_is_abandoned_once_its_decoded_size_passes_the_cap(server: _Server):
    bomb = gzip.compress(b"\0" * (16 * 1024 * 1024))
    assert len(bomb) < 100_000
    server.behaviours.append(_answer(bomb, "Content-Encoding: gzip"))
    with pytest.raises(ReplyTooLarge) as raised:
        _send(server, ReplyLimits(max_bytes=2 * 1024 * 1024))
    assert raised.value.max_bytes == 2 * 1024 * 1024


def test_a_gzip_body_within_the_cap_is_decoded(server: _Server):
    server.behaviours.append(_answer(gzip.compress(JSON_BODY), "Content-Encoding: gzip"))
    assert _send(server, ReplyLimits(max_bytes=len(JSON_BODY))).json() == {"ok": True}


def test_a_corrupt_gzip_body_is_transient(server: _Server):
    server.behaviours.append(_answer(b"this is not gzip at all", "Content-Encoding: gzip"))
    with pytest.raises(TransientError, match="could not be decompressed"):
        _send(server, ReplyLimits())


def test_a_body_cut_short_is_transient(server: _Server):
    def cut(handler: socketserver.StreamRequestHandler, stop: threading.Event) -> None:
        handler.wfile.write(_head(1000) + b"x" * 10)
        server.stop.set()  # the handler ends and closes the connection

    server.behaviours.append(cut)
    with pytest.raises(TransientError, match=r"no complete reply \(ChunkedEncodingError\)"):
        _send(server, ReplyLimits())


def test_a_refused_connection_is_transient():
    with _Server() as closed:
        url = closed.url
    with pytest.raises(TransientError, match=r"no complete reply \(ConnectionError\)"):
        transport.send(
            transport.new_session(),
            requests.Request("GET", url),
            limits=ReplyLimits(),
            timeout=(5.0, 5.0),
        )


def test_the_deadline_watches_only_its_own_thread(server: _Server):
    # A drip in one worker thread must not cut another thread's request.
    dripping = threading.Event()

    def drip(handler: socketserver.StreamRequestHandler, stop: threading.Event) -> None:
        dripping.set()
        _head_then_drip(b"z" * 200)(handler, stop)

    server.behaviours.append(drip)
    failures: list[BaseException] = []

    def slow() -> None:
        try:
            _send(server, ReplyLimits(deadline_seconds=0.5))
        except TransientError as error:
            failures.append(error)

    worker = threading.Thread(target=slow)
    worker.start()
    assert dripping.wait(5)
    for _ in range(5):
        assert _send(server, ReplyLimits(deadline_seconds=5)).json() == {"ok": True}
    worker.join(timeout=5)
    assert len(failures) == 1


def test_the_token_endpoint_is_held_to_the_same_deadline(server: _Server):
    server.behaviours.extend([_head_then_drip(b"{}" * 100)] * 3)
    authenticator = RefreshTokenAuthenticator(
        "ds-4",
        OAuthClient(server.url, "client", "client-secret-y"),
        "refresh-token-y",
        logger=logging.getLogger("test_transport"),
        limits=ReplyLimits(deadline_seconds=0.3),
        patience_seconds=0.5,
    )
    started = time.monotonic()
    with pytest.raises(DataSourceError) as raised:
        authenticator.access_token()
    assert "could not refresh the access token: token endpoint: no complete reply within 0.3 s" in (
        str(raised.value)
    )
    assert time.monotonic() - started < 5
