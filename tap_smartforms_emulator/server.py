"""HTTP plumbing: a threading HTTP/1.1 server that hands requests to a backend.

The backend (the ``Emulator``) turns a request into a ``Reply``; this module only
speaks HTTP: Content-Length on every reply (keep-alive works), an ``atl-traceid``
header on every reply, and the delivery tricks faults need (a cut body, a body
dripped a byte at a time, a connection closed without a reply).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Protocol

from typing_extensions import override

Delivery = Literal["normal", "cut", "drip", "reset"]


@dataclass(frozen=True)
class Reply:
    """What to answer: status, JSON body bytes, extra headers, and how to deliver it.

    ``cut`` announces the whole body, sends half of it and closes the connection;
    ``drip`` sends the headers, then the body one byte every ``drip_interval``
    seconds (until the client gives up or the server stops); ``reset`` closes the
    connection without answering.
    """

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    delivery: Delivery = "normal"
    content_type: str = "application/json; charset=utf-8"
    drip_interval: float = 0.5


def json_reply(status: int, payload: Any, *headers: tuple[str, str]) -> Reply:
    return Reply(status, json.dumps(payload, ensure_ascii=False).encode(), headers)


def error_reply(status: int, error: str, message: str, *headers: tuple[str, str]) -> Reply:
    """The data API's error body: ``{"error": code, "message": text}``."""
    return json_reply(status, {"error": error, "message": message}, *headers)


RESET = Reply(0, delivery="reset")


class Backend(Protocol):
    def handle_get(self, path: str, query: str, headers: dict[str, str]) -> Reply: ...

    def handle_post(self, path: str, query: str, headers: dict[str, str], body: bytes) -> Reply: ...


class EmulatorHTTPServer(ThreadingHTTPServer):
    """A threading server that remembers its open connections so ``stop`` can end them."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], backend: Backend) -> None:
        super().__init__(address, _Handler)
        self.backend = backend
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self.stopping = threading.Event()  # ends drips at once

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        """Shut down every open keep-alive connection (their threads then end)."""
        self.stopping.set()
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    @override
    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            return  # the client went away; nothing to report
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "smartforms-emulator/1"

    @override
    def setup(self) -> None:
        super().setup()
        self._server().track(self.connection, open_=True)

    @override
    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self._server().track(self.connection, open_=False)

    def _server(self) -> EmulatorHTTPServer:
        server = self.server
        assert isinstance(server, EmulatorHTTPServer)
        return server

    def _headers(self) -> dict[str, str]:
        return {name.lower(): value for name, value in self.headers.items()}

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length", "")
        if not length.isdigit():
            return b""
        return self.rfile.read(int(length))

    def do_GET(self) -> None:
        self._read_body()
        path, _, query = self.path.partition("?")
        self._send(self._server().backend.handle_get(path, query, self._headers()))

    def do_POST(self) -> None:
        body = self._read_body()
        path, _, query = self.path.partition("?")
        self._send(self._server().backend.handle_post(path, query, self._headers(), body))

    def _unsupported(self) -> None:
        self._read_body()
        self._send(error_reply(405, "method_not_allowed", f"{self.command} is not supported"))

    do_PUT = do_DELETE = do_PATCH = do_HEAD = _unsupported

    def _send(self, reply: Reply) -> None:
        if reply.delivery == "reset":
            self.close_connection = True
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("atl-traceid", secrets.token_hex(8))
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        if reply.delivery == "cut":
            self.wfile.write(reply.body[: len(reply.body) // 2])
            self.close_connection = True
            return
        if reply.delivery == "drip":
            self.close_connection = True
            for index in range(len(reply.body)):
                if self._server().stopping.wait(reply.drip_interval):
                    return
                self.wfile.write(reply.body[index : index + 1])
            return
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    @override
    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the stats record every request."""
