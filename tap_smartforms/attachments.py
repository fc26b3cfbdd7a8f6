"""Attachment files, kept before their download links expire (``attachments_path``).

Each file goes to ``<path>/<data_source_id>/<response_id>/<attachment_id>-<file name>``
on any fsspec filesystem (a local folder, ``s3://``, ``gs://``, ``az://``, ...),
streamed a chunk at a time: memory does not grow with the file. It is written to a
temporary name beside its final one and renamed when complete, so a run killed
mid-file leaves no file that looks complete; the next run overwrites the leftover.
A file already stored with the size the API announces is not downloaded again.

Before a sync, ``writability_problem`` writes and deletes a probe file under the root:
a path the tap cannot write to (a read-only folder, a missing bucket, no
credentials, an unknown protocol or a backend not installed) stops the run at once,
before any request, rather than failing every file of every page.

A file that cannot be downloaded keeps its record, with ``download_error`` saying
why in one line: it never fails its data source.

The data source's Bearer token goes only to the API's own host (scheme, host and
port of the data source URL), and those downloads count against the token's
request budget; links elsewhere (signed media URLs) are fetched without it.
Redirects are followed by ``requests``, which drops the Authorization header when
one leads to another host.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import fsspec
import requests
from fsspec.core import url_to_fs

from tap_smartforms import transport
from tap_smartforms.api_shape import Record
from tap_smartforms.client import CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS, DataSourceClient
from tap_smartforms.errors import REDACTOR, quote_server_text
from tap_smartforms.retry import (
    MAX_TOTAL_SECONDS,
    TransientError,
    retry_after_seconds,
    retry_transient,
)
from tap_smartforms.timestamps import format_utc

CHUNK_BYTES = 1024 * 1024
# Most file systems allow 255 bytes per name; the id and a dash come first.
MAX_FILE_NAME_BYTES = 150
PARTIAL_SUFFIX = ".partial"
PROBE_PREFIX = ".tap-smartforms-probe-"
# Windows and some object stores refuse these; a file name never needs them.
_UNSAFE_CHARACTERS = str.maketrans(dict.fromkeys('/\\:*?"<>|', "_"))


class DownloadError(Exception):
    """This file cannot be downloaded (not found, expired, too large, ...): one line."""


@dataclass
class PageDownloads:
    """What happened to one page's files."""

    stored: int = 0
    failed: int = 0


def safe_name(text: str, *, max_bytes: int = MAX_FILE_NAME_BYTES) -> str:
    """``text`` as one path component: no separators, no ``..``, no control
    characters, at most ``max_bytes`` of UTF-8 (the extension kept), unicode kept."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(ch for ch in text if not unicodedata.category(ch).startswith("C"))
    text = text.translate(_UNSAFE_CHARACTERS)
    while ".." in text:
        text = text.replace("..", ".")
    text = text.strip(" .")
    if len(text.encode()) > max_bytes:
        stem, dot, extension = text.rpartition(".")
        if not dot or not stem or len(extension.encode()) > 16:
            stem, extension = text, ""
        room = max_bytes - len(extension.encode()) - (1 if extension else 0)
        stem = stem.encode()[:room].decode(errors="ignore").rstrip(" .")
        text = f"{stem}.{extension}" if extension else stem
    return text or "file"


class AttachmentStore:
    """Where files are kept: a folder of an fsspec filesystem."""

    def __init__(self, url: str, **storage_options: Any) -> None:
        self.fs: fsspec.AbstractFileSystem
        self.fs, root = url_to_fs(url, **storage_options)
        self.root = root.rstrip("/")

    def check_writable(self) -> None:
        """Write a small probe file under the root, then delete it; raises what the
        filesystem raises. Only a local root folder is created: on an object store
        ``makedirs`` would create a missing bucket (s3fs, gcsfs and adlfs do), and a
        mistyped bucket name must fail here, not become a new bucket."""
        if _is_local(self.fs):
            self.fs.makedirs(self.root, exist_ok=True)
        probe = f"{self.root}/{PROBE_PREFIX}{uuid.uuid4().hex}"
        with self.fs.open(probe, "wb") as out:
            out.write(b"tap-smartforms checks that it can write here; safe to delete\n")
        self.fs.rm(probe)

    def path_for(self, record: Record) -> str:
        name = f"{record['id']}-{record.get('file_name') or 'file'}"
        parts = (str(record["data_source_id"]), str(record["response_id"]), name)
        return "/".join([self.root, *(safe_name(part) for part in parts)])

    def stored_size(self, path: str) -> int | None:
        """The size of the complete file at ``path``; None when there is none."""
        try:
            return int(self.fs.size(path))
        except (FileNotFoundError, OSError):
            return None

    def url_of(self, path: str) -> str:
        """``path`` as the user would name it: with its protocol unless local."""
        return path if _is_local(self.fs) else str(self.fs.unstrip_protocol(path))

    def checksum(self, path: str) -> str:
        digest = hashlib.sha256()
        with self.fs.open(path, "rb") as stored:
            while chunk := stored.read(CHUNK_BYTES):
                digest.update(chunk)
        return digest.hexdigest()

    def modified_at(self, path: str) -> str | None:
        try:
            moment = self.fs.modified(path)
        except (NotImplementedError, OSError, KeyError):
            return None
        if moment.tzinfo is None:  # fsspec's local and memory filesystems give UTC
            moment = moment.replace(tzinfo=timezone.utc)
        return format_utc(moment)


def writability_problem(url: str) -> str | None:
    """Why attachment files cannot be kept at ``url``, in one line that names the
    setting and never a secret; None when a probe file was written there and deleted."""
    reason = unwritable_reason(url)
    return None if reason is None else f"attachments_path: {reason}"


def unwritable_reason(url: str) -> str | None:
    """``cannot write to <url>: <cause>`` (no secret), or None when a probe file was
    written at ``url`` and deleted."""
    try:
        AttachmentStore(url).check_writable()
    except Exception as error:  # fsspec and its backends raise their own
        cause = quote_server_text(f"{type(error).__name__}: {error}")
        return f"cannot write to {quote_server_text(shown_url(url))}: {cause}"
    return None


def shown_url(url: str) -> str:
    """``url`` without a user name or password (``sftp://user:pass@host/x``)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    protocol = fs.protocol
    return "file" in (protocol if isinstance(protocol, tuple) else (protocol,))


class AttachmentDownloader:
    """Downloads the files of the attachments records it is given, a few at a time
    (one thread pool per run), filling each record's file columns."""

    def __init__(
        self,
        store: AttachmentStore,
        *,
        workers: int,
        max_bytes: int | None,
        deadline_seconds: float,
        logger: logging.Logger,
        patience_seconds: float = MAX_TOTAL_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        new_session: Callable[[], requests.Session] = transport.new_session,
    ) -> None:
        self.store = store
        self._max_bytes = max_bytes
        self._deadline_seconds = deadline_seconds
        self._patience_seconds = patience_seconds
        self._logger = logger
        self._sleep = sleep
        self._new_session = new_session
        self._sessions = threading.local()  # a requests.Session is not thread-safe
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="attachment-download")

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def resolve(self, records: Sequence[Record], client: DataSourceClient) -> PageDownloads:
        """Download (or find already stored) every record's file; return when all are
        settled, so a record never goes out before its file's columns are known."""
        futures = [self._pool.submit(self._resolve, record, client) for record in records]
        try:
            outcomes = [future.result() for future in futures]
        except BaseException:
            # Stopping (SIGTERM, Ctrl-C): the files not started stay for the next run.
            for future in futures:
                future.cancel()
            raise
        return PageDownloads(stored=outcomes.count(True), failed=outcomes.count(False))

    def _resolve(self, record: Record, client: DataSourceClient) -> bool:
        try:
            self._keep(record, client)
        except DownloadError as error:
            problem = str(error)
        except Exception as error:  # storage backends and token refreshes raise their own
            problem = quote_server_text(f"{type(error).__name__}: {error}")
        else:
            return True
        record["download_error"] = REDACTOR.redact(problem)
        self._logger.warning(
            "data source %s: attachment %s of response %s not downloaded: %s",
            record["data_source_id"],
            record["id"],
            record["response_id"],
            record["download_error"],
        )
        return False

    def _keep(self, record: Record, client: DataSourceClient) -> None:
        store = self.store
        path = store.path_for(record)
        announced = record.get("size_bytes")
        stored = store.stored_size(path)
        if stored is not None and (announced is None or announced == stored):
            self._describe(record, path, stored, store.checksum(path), store.modified_at(path))
            return
        url = record.get("download_url")
        if not url:
            raise DownloadError("the API gave no download URL")
        if self._max_bytes is not None and announced is not None and announced > self._max_bytes:
            raise DownloadError(
                f"too large: {announced} bytes, over max_attachment_bytes ({self._max_bytes})"
            )
        size, sha256 = retry_transient(
            lambda: self._download(str(url), path, client),
            describe=f"data source {client.data_source_id}: attachment {record['id']}",
            logger=self._logger,
            on_give_up=DownloadError,
            sleep=self._sleep,
            patience_seconds=self._patience_seconds,
        )
        self._describe(record, path, size, sha256, format_utc(datetime.now(timezone.utc)))

    def _describe(
        self, record: Record, path: str, size: int, sha256: str, downloaded_at: str | None
    ) -> None:
        record.update(
            stored_path=self.store.url_of(path),
            sha256=sha256,
            stored_size_bytes=size,
            downloaded_at=downloaded_at,
        )

    def _download(self, url: str, path: str, client: DataSourceClient) -> tuple[int, str]:
        """One try: the file to ``path`` by way of its temporary name."""
        on_api_host = _origin(url) == _origin(client.endpoint.url)
        request = requests.Request(
            "GET",
            url,
            headers={"User-Agent": "tap-smartforms", "Accept": "*/*"},
            # Never the token to another host: a signed link needs none, and a
            # token sent there would be one handed to a stranger.
            auth=client.authenticator if on_api_host else None,
        )
        budget = client.limiter.slot() if on_api_host else contextlib.nullcontext()
        with (
            budget,
            transport.streamed(
                self._session(),
                request,
                deadline_seconds=self._deadline_seconds,
                timeout=(CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS),
            ) as response,
        ):
            self._check_reply(response, on_api_host, client)
            return self._write(response.iter_content(CHUNK_BYTES), path)

    def _check_reply(
        self, response: requests.Response, on_api_host: bool, client: DataSourceClient
    ) -> None:
        status = response.status_code
        if status == 200:
            length = response.headers.get("Content-Length", "")
            if self._max_bytes is not None and length.isdigit() and int(length) > self._max_bytes:
                raise DownloadError(
                    f"too large: {length} bytes, over max_attachment_bytes ({self._max_bytes})"
                )
            return
        if status == 401 and on_api_host:
            rejected = response.request.headers.get("Authorization", "").removeprefix("Bearer ")
            client.authenticator.refresh_after_rejection(rejected or None)
            raise TransientError("the API refused the access token (HTTP 401); refreshed it")
        if status == 429:
            raise TransientError(
                "rate limited (HTTP 429)", retry_after=retry_after_seconds(response)
            )
        if status >= 500:
            raise TransientError(f"HTTP {status}")
        if status == 404:
            raise DownloadError("not found (HTTP 404): the file was deleted")
        if status in (403, 410):
            raise DownloadError(
                f"the download link expired or access was denied (HTTP {status}); "
                "the next run gets a fresh link"
            )
        raise DownloadError(f"the server refused the download (HTTP {status})")

    def _write(self, chunks: Iterator[bytes], path: str) -> tuple[int, str]:
        fs = self.store.fs
        partial = path + PARTIAL_SUFFIX
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        try:
            with fs.open(partial, "wb") as out:
                for chunk in chunks:
                    size += len(chunk)
                    if self._max_bytes is not None and size > self._max_bytes:
                        raise DownloadError(
                            f"too large: over max_attachment_bytes ({self._max_bytes})"
                        )
                    digest.update(chunk)
                    out.write(chunk)
            fs.mv(partial, path)
        except BaseException:
            with contextlib.suppress(Exception):
                fs.rm(partial)
            raise
        return size, digest.hexdigest()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._sessions, "session", None)
        if session is None:
            session = self._sessions.session = self._new_session()
        return session


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        port = None
    return parts.scheme.lower(), parts.hostname, port
