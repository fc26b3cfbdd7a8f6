"""Attachment files: the emulator serves every attachment's file at FILES_PATH.

A file's bytes follow from its key (the last part of its download URL) and its
announced size, so a test can compare what the tap stored with ``file_bytes``.
``Emulator.attach_file`` adds files that misbehave: expired links (410, 403), a
deleted file (404), one that fails once (503), a redirect to another host name, or
a link on another host name of the emulator (``localhost`` for ``127.0.0.1``), to
show the tap never sends its token there. Every file request is remembered
(``FileRequest``) with whether it carried a Bearer token.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from typing import Literal

from .server import Reply, error_reply

FILES_PATH = "/files/"
Serving = Literal["ok", "expired", "forbidden", "missing", "flaky", "redirect"]
_FAILURES: dict[str, tuple[int, str, str]] = {
    "expired": (410, "gone", "This download link has expired."),
    "forbidden": (403, "forbidden", "Signature expired."),
    "missing": (404, "not_found", "The attachment was deleted."),
    "flaky": (503, "unavailable", "Try again."),  # once; then the file is served
}


@dataclass(frozen=True)
class FileRequest:
    key: str
    host: str
    bearer: bool


def file_bytes(key: str, size: int) -> bytes:
    """The content of file ``key``: ``size`` bytes drawn from the key alone."""
    seed = hashlib.sha256(key.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


class FileServer:
    """What the files path answers; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._serving: dict[str, Serving] = {}
        self.requests: list[FileRequest] = []

    def serve_as(self, key: str, serving: Serving) -> None:
        with self._lock:
            self._serving[key] = serving

    def reply(self, key: str, headers: dict[str, str], size: int | None) -> Reply:
        bearer = headers.get("authorization", "").lower().startswith("bearer ")
        with self._lock:
            self.requests.append(FileRequest(key, headers.get("host", ""), bearer))
            serving = self._serving.get(key, "ok")
            if serving in ("flaky", "redirect"):
                self._serving[key] = "ok"
        if serving == "redirect":
            # To the same file on another host name of this emulator, as a signed
            # media link would be: the token must not follow.
            port = headers.get("host", "").rpartition(":")[2]
            location = f"http://localhost:{port}{FILES_PATH}{key}"
            return Reply(302, headers=(("Location", location),))
        if serving != "ok":
            return error_reply(*_FAILURES[serving])
        if size is None:
            return error_reply(404, "not_found", "No such attachment.")
        return Reply(200, file_bytes(key, size), content_type="application/octet-stream")
