"""The token store: each data source's rotating refresh token, kept between runs.

Atlassian rotates refresh tokens (api-contract §2): every refresh returns a new one
and disables the old, and a rotated-away token used more than 10 minutes later
revokes the whole chain. Meltano writes a plugin's config afresh for every run, so
a new token cannot live there; it lives in this JSON file instead, the only place
besides memory that ever holds a token.

- One entry per (token URL, client ID, data source), each with the chain's current
  refresh token, the chain's *origin* (a SHA-256 fingerprint, never the token, of
  the refresh token it grew from) and when it was first authorized and last rotated.
- Writes are atomic (a temp file in the same folder, fsync, rename, fsync of the
  folder): a crash leaves the old file or the new one, never half of either. The
  file is 0600 and a folder the store creates is 0700.
- Every refresh happens under an exclusive lock on a sibling ``.lock`` file, so two
  runs on one host never refresh one chain at the same time, and the one that waits
  re-reads the store and continues from the token the other one just rotated.
  ``flock`` is reliable only on a local disk: one store per host.

Precedence between the config and the store (``RefreshTokenSource.pick``): the
stored chain wins while it descends from the configured refresh token (its origin,
or an origin it replaced); a refresh token the store has never seen means the user
authorized again, so the config wins and its first rotation restarts the entry.

Libraries considered, and why this module does without them:

- ``filelock`` (4.3.1) opens its lock file with O_NOFOLLOW, but gives no handle on
  the descriptor it locks, so the lock file's owner and mode cannot be checked on
  the file actually locked (a check by path beforehand races with a swap), and it
  may fall back to a soft lock on its own. It would save ``_acquire``/``_try_lock``
  but not the thread lock or the checks, and it would be a new runtime dependency.
- ``platformdirs`` (4.14): ``user_state_dir("tap-smartforms", appauthor=False)`` gives
  the same folder on Linux and macOS, but on Windows it ignores XDG_STATE_HOME (which
  ``default_store_path`` honours first everywhere) and asks the shell for the folder
  rather than reading LOCALAPPDATA. A store that moves between versions strands its
  chain, and the saving is a few lines plus a dependency.
- msgspec for the file: decoding the whole document into Structs would make one
  damaged entry fail every data source; here an entry is only checked when its own
  data source reads it, and the message names that data source. Decoding entry by
  entry (``msgspec.convert``) would keep that and could replace ``_chain`` and its
  helpers; not done yet (see the commit that added this note).
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import hashlib
import json
import logging
import os
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

APP_FOLDER = "tap-smartforms"
STORE_FILE_NAME = "tokens.json"
FORMAT_VERSION = 1
# Atlassian: a refresh token expires after 90 days unused, a chain 365 days after consent.
REFRESH_TOKEN_IDLE_DAYS = 90
CHAIN_LIFETIME_DAYS = 365
# Origins an entry has replaced: a config still holding one of these is stale, not new.
MAX_REPLACED_ORIGINS = 20
# A refresh holds the lock for one try (auth.py waits between tries outside it), at
# most a request's timeout; waiting this long means a stuck process holds it.
LOCK_WAIT_SECONDS = 600.0
_LOCK_POLL_SECONDS = (0.005, 0.2)

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime.datetime]
TokenSourceName = Literal["config", "store"]


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def fingerprint(refresh_token: str) -> str:
    """What the store records of a token it must recognise but need not keep."""
    return "sha256:" + hashlib.sha256(refresh_token.encode("utf-8")).hexdigest()


class TokenStoreError(Exception):
    """The store could not be read, written or locked; the message names the path."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        super().__init__(f"the token store {path} {problem}")


def default_store_path(
    environ: Mapping[str, str] | None = None,
    platform: str = sys.platform,
    home: Path | None = None,
) -> Path:
    """Where the store lives when ``token_store_path`` is not set: the per-user state
    folder, XDG_STATE_HOME (default ``~/.local/state``), on macOS ``~/Library/Application
    Support``, on Windows ``%LOCALAPPDATA%``.

    The same for every launch by one user on one host (by hand, ``meltano run``,
    ``meltano config ... test``, any Meltano environment): Meltano's project variables
    are ignored on purpose. Stores that depended on the launcher held copies of one
    chain, and a copy that fell behind revoked it (a rotated-away token sent again).
    """
    env = os.environ if environ is None else environ
    user_home = home if home is not None else Path.home()
    if state_home := env.get("XDG_STATE_HOME"):
        base = Path(state_home)
    elif platform == "win32":
        base = Path(env.get("LOCALAPPDATA") or user_home / "AppData" / "Local")
    elif platform == "darwin":
        base = user_home / "Library" / "Application Support"
    else:
        base = user_home / ".local" / "state"
    return base / APP_FOLDER / STORE_FILE_NAME


def legacy_store_paths(
    environ: Mapping[str, str] | None = None, cwd: Path | None = None
) -> tuple[Path, ...]:
    """Where earlier versions kept the store by default, depending on the launcher:
    the Meltano project's system folder (``.meltano/``, or MELTANO_SYS_DIR_ROOT) and the
    demo environment's ``.demo/tokens.json``; the project is MELTANO_PROJECT_ROOT, or
    the current folder when it holds a meltano.yml."""
    env = os.environ if environ is None else environ
    folder = Path.cwd() if cwd is None else cwd
    projects = [Path(root) for root in [env.get("MELTANO_PROJECT_ROOT")] if root]
    if (folder / "meltano.yml").is_file():
        projects.append(folder)
    candidates = [
        Path(sys_dir) / APP_FOLDER / STORE_FILE_NAME
        for sys_dir in [env.get("MELTANO_SYS_DIR_ROOT")]
        if sys_dir
    ]
    for project in projects:
        candidates += [
            project / ".meltano" / APP_FOLDER / STORE_FILE_NAME,
            project / ".demo" / STORE_FILE_NAME,
        ]
    unique: dict[Path, None] = {}
    for candidate in candidates:
        unique.setdefault(candidate.absolute(), None)
    return tuple(unique)


def store_path(configured: str | None) -> Path:
    """The store's path: the ``token_store_path`` setting (``~`` expanded) or the default."""
    return Path(configured).expanduser() if configured else default_store_path()


def open_store(configured: str | None, *, clock: Clock | None = None) -> TokenStore:
    """The store the tap uses: ``token_store_path`` as set, or the default store, which
    adopts newer chains from the stores of earlier versions (``TokenStore.adopt_legacy``)."""
    path = store_path(configured)
    legacy = () if configured else tuple(p for p in legacy_store_paths() if p != path.absolute())
    return TokenStore(path, clock=clock or utc_now, legacy_paths=legacy)


_THREAD_LOCKS: dict[Path, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


def _thread_lock(path: Path) -> threading.Lock:
    with _THREAD_LOCKS_GUARD:
        return _THREAD_LOCKS.setdefault(path.absolute(), threading.Lock())


@dataclass(frozen=True)
class EntryKey:
    """Which chain an entry holds: tokens are only valid for this client at this endpoint."""

    token_url: str
    client_id: str
    data_source_id: str


@dataclass(frozen=True)
class StoredChain:
    """One entry of the store."""

    refresh_token: str
    origin: str
    first_authorized_at: datetime.datetime
    last_rotated_at: datetime.datetime
    replaced_origins: tuple[str, ...] = ()
    # Refreshes since ``origin``: which of two copies of one chain went further.
    rotations: int = 0

    def descends_from(self, origin: str) -> bool:
        """Whether the chain grew from ``origin``, or replaced the chain that did."""
        return origin == self.origin or origin in self.replaced_origins

    def expiry_warning(self, now: datetime.datetime, horizon_days: int) -> str | None:
        """What to tell the user when the chain ends within ``horizon_days`` (0: never)."""
        if horizon_days <= 0:
            return None
        idle_end = self.last_rotated_at + datetime.timedelta(days=REFRESH_TOKEN_IDLE_DAYS)
        chain_end = self.first_authorized_at + datetime.timedelta(days=CHAIN_LIFETIME_DAYS)
        horizon = now + datetime.timedelta(days=horizon_days)
        if chain_end <= idle_end and chain_end <= horizon:
            return (
                f"its authorization ends on {chain_end.date().isoformat()}, "
                f"{CHAIN_LIFETIME_DAYS} days after it was first authorized "
                f"({self.first_authorized_at.date().isoformat()}); repeat the Data Source "
                "authorization steps before then (README, 'Tokens': tap-smartforms-auth)"
            )
        if idle_end <= horizon:
            return (
                f"its refresh token expires on {idle_end.date().isoformat()}, "
                f"{REFRESH_TOKEN_IDLE_DAYS} days after it was last rotated "
                f"({self.last_rotated_at.date().isoformat()}); run the tap before then "
                "(each run renews it) or authorize again"
            )
        return None


class TokenStore:
    """The store file at ``path``; every method is safe across threads and processes
    as long as writes happen inside ``locked()``."""

    def __init__(
        self, path: Path, *, clock: Clock = utc_now, legacy_paths: tuple[Path, ...] = ()
    ) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")
        self.clock = clock
        self.legacy_paths = legacy_paths

    @contextlib.contextmanager
    def locked(self, wait_seconds: float = LOCK_WAIT_SECONDS) -> Iterator[None]:
        """Hold the store's exclusive lock (across processes and threads)."""
        # The thread lock queues this process's data sources without polling the file.
        with _thread_lock(self.path), self._file_lock(wait_seconds):
            yield

    @contextlib.contextmanager
    def _file_lock(self, wait_seconds: float) -> Iterator[None]:
        self._make_folder()
        # O_NOFOLLOW: a symbolic link planted as the lock file would make us create or
        # lock a file of someone else's choosing.
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            descriptor = os.open(self.lock_path, flags, 0o600)
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise TokenStoreError(
                    self.path,
                    f"has a symbolic link as its lock file {self.lock_path}; it was not "
                    "followed: remove it (and find out who put it there)",
                ) from None
            raise TokenStoreError(
                self.path, f"could not be locked: {self.lock_path}: {_reason(error)}"
            ) from None
        try:
            self._check_private(descriptor, self.lock_path, private_mode=0o600)
            # Each holder opens the lock file anew: flock locks belong to an open file,
            # so threads of one process exclude each other too.
            _acquire(descriptor, self.path, self.lock_path, wait_seconds)
            yield
        finally:
            os.close(descriptor)  # releases the lock

    def read(self, key: EntryKey) -> StoredChain | None:
        """The entry for ``key``, if the store has one."""
        for entry in self._read_entries():
            if _entry_key(entry) == key:
                return self._chain(entry)
        return None

    def save_rotation(
        self, key: EntryKey, refresh_token: str, origin: str, *, also_replaced: tuple[str, ...] = ()
    ) -> StoredChain:
        """Record ``refresh_token`` as the newest of the chain grown from ``origin``.

        A chain other than the stored one (the user authorized again) restarts the
        entry; the origin it replaces is remembered, with ``also_replaced``.
        """
        now = self.clock()
        previous = self.read(key)
        if previous is not None and previous.origin == origin:
            chain = replace(
                previous,
                refresh_token=refresh_token,
                last_rotated_at=now,
                rotations=previous.rotations + 1,
            )
        else:
            replaced = () if previous is None else (previous.origin, *previous.replaced_origins)
            chain = StoredChain(refresh_token, origin, now, now, replaced)
        extra = tuple(o for o in also_replaced if o != origin and o not in chain.replaced_origins)
        chain = replace(chain, replaced_origins=(*extra, *chain.replaced_origins))
        self._write_entry(key, chain)
        return chain

    def start_chain(self, key: EntryKey, refresh_token: str) -> StoredChain:
        """Record a chain just authorized (an authorization code exchanged). It replaces
        any chain of the old stores too, so none is ever adopted over it."""
        older = tuple(chain.origin for _, chain in self._legacy_entries(key))
        return self.save_rotation(
            key, refresh_token, fingerprint(refresh_token), also_replaced=older
        )

    def find(self, key: EntryKey) -> StoredChain | None:
        """The entry for ``key`` here or, failing that, in an old store (read only)."""
        found = self.read(key)
        if found is None:
            found = next((chain for _, chain in self._legacy_entries(key)), None)
        return found

    def adopt_legacy(self, key: EntryKey) -> None:
        """Move into this store a chain for ``key`` that an old store holds further
        along than this one (call inside ``locked()``); its old entry is removed, so
        no copy that falls behind is left to be used. Two unrelated chains cannot be
        ranked: TokenStoreError says which stores to choose between."""
        if not self.legacy_paths:
            return
        current = self.read(key)
        for legacy_path in self.legacy_paths:
            if not legacy_path.is_file():
                continue
            legacy = TokenStore(legacy_path, clock=self.clock)
            with legacy.locked():
                found = legacy.read(key)
                if found is None:
                    continue
                ranking = _rank(found, current)
                if ranking == "unrelated":
                    assert current is not None
                    raise TokenStoreError(
                        self.path,
                        f"and the old token store {legacy_path} hold different "
                        f"authorizations of data source {key.data_source_id} (first "
                        f"authorized {current.first_authorized_at.date().isoformat()} here, "
                        f"{found.first_authorized_at.date().isoformat()} there); delete the "
                        "entry you do not want (usually the older), or authorize again with "
                        "tap-smartforms-auth",
                    )
                if ranking == "newer":
                    self._write_entry(key, found)
                    logger.warning(
                        "data source %s: adopted its token chain (rotated %s) from the old "
                        "token store %s into %s, the one store for every launch of the tap",
                        key.data_source_id,
                        _rotated(found).removeprefix("rotated "),
                        legacy_path,
                        self.path,
                    )
                    current = found
                # Adopted, or a copy this store has moved past: either way it must not
                # be used again (a store pointed there would send a rotated-away token).
                legacy._remove_entry(key)

    def _legacy_entries(self, key: EntryKey) -> list[tuple[Path, StoredChain]]:
        entries = []
        for legacy_path in self.legacy_paths:
            if legacy_path.is_file():
                found = TokenStore(legacy_path, clock=self.clock).read(key)
                if found is not None:
                    entries.append((legacy_path, found))
        return entries

    def check_writable(self) -> None:
        """Raise TokenStoreError unless a rotated token could be saved now: the folder
        exists (or is made), a temporary file can be written, synced and removed
        there, and the store's path is not a folder. Call inside ``locked()``."""
        self._make_folder()
        fix = "make it writable, or set token_store_path to a writable place"
        if self.path.is_dir():
            raise TokenStoreError(
                self.path,
                "cannot be written: it is a folder; move it away, or set "
                "token_store_path to a file's path",
            )
        try:
            descriptor, temporary = tempfile.mkstemp(
                prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
            )
            try:
                os.write(descriptor, b"{}\n")
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
                os.unlink(temporary)
        except OSError as error:
            raise TokenStoreError(
                self.path,
                f"cannot be written (its folder {self.path.parent}: {_reason(error)}); {fix}",
            ) from None

    # ------------------------------------------------------------------ the file

    def _make_folder(self) -> None:
        folder = self.path.parent
        missing = [folder, *folder.parents]
        missing = list(reversed([level for level in missing if not level.exists()]))
        try:
            for level in missing:
                # One level at a time, each 0700 whatever the umask (mkdir's parents=True
                # would make the intermediate ones 0777 minus the umask).
                with contextlib.suppress(FileExistsError):
                    os.mkdir(level, 0o700)
                    os.chmod(level, 0o700)
            descriptor = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError as error:
            raise TokenStoreError(
                self.path,
                f"has no usable folder ({self.path.parent}: {_reason(error)}); create that "
                "folder, or set token_store_path to a writable place",
            ) from None
        try:
            self._check_private(descriptor, folder, private_mode=None)
        finally:
            os.close(descriptor)

    def _check_private(self, descriptor: int, what: Path, *, private_mode: int | None) -> None:
        """Refuse ``what`` when another user owns it or it is a shared sticky folder
        (/tmp); take group and other write access (or, ``private_mode``, every access
        beyond it) away from one of ours, with a warning."""
        if sys.platform == "win32":  # pragma: no cover - no POSIX owners and modes
            return
        status = os.fstat(descriptor)
        if status.st_uid != os.geteuid():
            raise TokenStoreError(
                self.path,
                f"uses {what}, which belongs to another user (uid {status.st_uid}); "
                "set token_store_path to a folder of your own",
            )
        mode = stat.S_IMODE(status.st_mode)
        if stat.S_ISDIR(status.st_mode) and mode & stat.S_ISVTX and mode & 0o002:
            raise TokenStoreError(
                self.path,
                f"is in {what}, a folder every user can write to; set token_store_path to "
                "a file in a folder of your own",
            )
        private = mode & ~0o022 if private_mode is None else private_mode
        if mode & ~private & 0o077:
            try:
                os.fchmod(descriptor, private)
            except OSError as error:
                raise TokenStoreError(
                    self.path, f"could not make {what} private: {_reason(error)}"
                ) from None
            logger.warning(
                "the token store's %s %s was open to other users (mode %04o); made it %04o",
                "folder" if stat.S_ISDIR(status.st_mode) else "lock file",
                what,
                mode,
                private,
            )

    def _read_entries(self) -> list[dict[str, Any]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as error:
            raise TokenStoreError(self.path, f"could not be read: {_reason(error)}") from None
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        if not isinstance(document, dict) or not isinstance(document.get("entries"), list):
            raise TokenStoreError(
                self.path,
                "is not a token store file; restore it from a backup, or move it away and "
                "authorize the data sources again",
            )
        if document.get("version") != FORMAT_VERSION:
            raise TokenStoreError(
                self.path,
                f"has format version {document.get('version')!r}, this tap reads "
                f"{FORMAT_VERSION}; use the tap-smartforms version that wrote it",
            )
        return [entry for entry in document["entries"] if isinstance(entry, dict)]

    def _chain(self, entry: Mapping[str, Any]) -> StoredChain:
        try:
            return StoredChain(
                refresh_token=_text(entry["refresh_token"]),
                origin=_text(entry["origin"]),
                first_authorized_at=_instant(entry["first_authorized_at"]),
                last_rotated_at=_instant(entry["last_rotated_at"]),
                replaced_origins=tuple(_text(o) for o in entry.get("replaced_origins", [])),
                rotations=_count(entry.get("rotations", 0)),
            )
        except (KeyError, TypeError, ValueError):
            raise TokenStoreError(
                self.path,
                f"has a damaged entry for data source {entry.get('data_source_id')}; restore "
                "the file from a backup, or authorize that data source again",
            ) from None

    def _remove_entry(self, key: EntryKey) -> None:
        entries = [entry for entry in self._read_entries() if _entry_key(entry) != key]
        self._write_entries(entries)

    def _write_entry(self, key: EntryKey, chain: StoredChain) -> None:
        entries = [entry for entry in self._read_entries() if _entry_key(entry) != key]
        entries.append(
            {
                "token_url": key.token_url,
                "client_id": key.client_id,
                "data_source_id": key.data_source_id,
                "refresh_token": chain.refresh_token,
                "origin": chain.origin,
                "first_authorized_at": chain.first_authorized_at.isoformat(),
                "last_rotated_at": chain.last_rotated_at.isoformat(),
                "replaced_origins": list(chain.replaced_origins[:MAX_REPLACED_ORIGINS]),
                "rotations": chain.rotations,
            }
        )
        self._write_entries(entries)

    def _write_entries(self, entries: list[dict[str, Any]]) -> None:
        entries.sort(key=lambda e: (str(e.get("data_source_id")), str(e.get("client_id"))))
        payload = json.dumps({"version": FORMAT_VERSION, "entries": entries}, indent=2) + "\n"
        self._make_folder()
        try:
            _write_atomically(self.path, payload.encode("utf-8"))
        except OSError as error:
            raise TokenStoreError(self.path, f"could not be written: {_reason(error)}") from None


@dataclass(frozen=True)
class HeldToken:
    """The refresh token a data source refreshes with, where it came from, and the
    origin of its chain."""

    value: str
    origin: str
    source: TokenSourceName


class RefreshTokenSource:
    """One data source's refresh token, from the config or the store (module docstring).

    Call ``pick``, ``newer_than`` and ``keep`` inside ``locked()``.
    """

    def __init__(self, store: TokenStore, key: EntryKey, configured: str | None) -> None:
        self.store = store
        self.key = key
        self._configured = configured
        self._refused: set[str] = set()

    def locked(self) -> contextlib.AbstractContextManager[None]:
        return self.store.locked()

    def pick(self, held: HeldToken | None) -> tuple[HeldToken, str | None]:
        """The token to refresh with now, and a line for the log when it changed.

        ``held`` is the token in use (None before the first refresh); another run
        may have rotated it since, in which case the store's newer one is returned.
        """
        if held is None:
            self.store.adopt_legacy(self.key)
        stored = self.store.read(self.key)
        if held is not None:
            if (
                stored is not None
                and stored.descends_from(held.origin)
                and stored.refresh_token != held.value
            ):
                return (
                    HeldToken(stored.refresh_token, stored.origin, "store"),
                    f"another run rotated the refresh token ({_rotated(stored)}); continuing "
                    "from the token store",
                )
            return held, None
        if self._configured is None:
            if stored is None:
                raise TokenStoreError(
                    self.store.path,
                    "holds no refresh token for it and the config sets none: set this data "
                    "source's refresh_token, or run tap-smartforms-auth (README, 'Tokens')",
                )
            return (
                HeldToken(stored.refresh_token, stored.origin, "store"),
                f"using the stored refresh token ({_rotated(stored)}) from the token store "
                f"{self.store.path}",
            )
        configured_origin = fingerprint(self._configured)
        if stored is not None and stored.descends_from(configured_origin):
            return (
                HeldToken(stored.refresh_token, stored.origin, "store"),
                f"using the stored refresh token ({_rotated(stored)}, descended from the "
                f"configured one) from the token store {self.store.path}",
            )
        detail = (
            "; the token store has none yet for this data source"
            if stored is None
            else "; it is new to the token store, whose entry it restarts"
        )
        return (
            HeldToken(self._configured, configured_origin, "config"),
            f"using the refresh token from the config{detail} ({self.store.path})",
        )

    def newer_than(self, refused: HeldToken) -> HeldToken | None:
        """After ``refused`` was refused (invalid_grant): the store's token, if it holds a
        different one for this data source (the configured token may be the stale one)."""
        stored = self.store.read(self.key)
        if stored is None or stored.refresh_token == refused.value:
            return None
        if refused.source == "config":
            # The store's chain wins over this configured token from now on.
            self._refused.add(refused.origin)
        return HeldToken(stored.refresh_token, stored.origin, "store")

    def keep(self, held: HeldToken, rotated: str) -> HeldToken:
        """Save a rotated refresh token; raises TokenStoreError if it cannot be saved."""
        self.store.save_rotation(
            self.key, rotated, held.origin, also_replaced=tuple(sorted(self._refused))
        )
        return HeldToken(rotated, held.origin, "store")

    def expiry_warning(self, horizon_days: int) -> str | None:
        """A warning when the stored chain ends within ``horizon_days``."""
        stored = self.store.read(self.key)
        return None if stored is None else stored.expiry_warning(self.store.clock(), horizon_days)


# ---------------------------------------------------------------------- helpers


def _rotated(chain: StoredChain) -> str:
    when = chain.last_rotated_at.astimezone(datetime.timezone.utc)
    return f"rotated {when:%Y-%m-%d %H:%M} UTC"


def _entry_key(entry: Mapping[str, Any]) -> EntryKey:
    return EntryKey(
        str(entry.get("token_url")), str(entry.get("client_id")), str(entry.get("data_source_id"))
    )


def _text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("not a non-empty string")
    return value


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("not a count")
    return value


def _rank(
    legacy: StoredChain, current: StoredChain | None
) -> Literal["newer", "older", "unrelated"]:
    """Whether an old store's chain is further along than this store's."""
    if current is None:
        return "newer"
    if legacy.refresh_token == current.refresh_token:
        return "older"  # the same token: nothing to adopt
    if legacy.origin == current.origin:
        # Two copies of one chain: the one rotated more often holds the live token
        # (the other's was rotated away), the later rotation for entries that predate
        # the count.
        further = (legacy.rotations, legacy.last_rotated_at) > (
            current.rotations,
            current.last_rotated_at,
        )
        return "newer" if further else "older"
    if current.descends_from(legacy.origin):
        return "older"  # this store's chain replaced that one (authorized again)
    if legacy.descends_from(current.origin):
        return "newer"
    return "unrelated"


def _instant(value: object) -> datetime.datetime:
    instant = datetime.datetime.fromisoformat(_text(value))
    if instant.tzinfo is None:
        raise ValueError("naive timestamp")
    return instant


def _reason(error: OSError | UnicodeDecodeError) -> str:
    # Never str(error): it may quote file contents; the path is named by the caller.
    if isinstance(error, UnicodeDecodeError):
        return "not UTF-8 text"
    return error.strerror or type(error).__name__


def _write_atomically(path: Path, data: bytes) -> None:
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
    )  # mkstemp creates the file 0600
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX; Windows has no folder handles to sync)."""
    if sys.platform == "win32":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _acquire(descriptor: int, path: Path, lock_path: Path, wait_seconds: float) -> None:
    deadline = time.monotonic() + wait_seconds
    pause = _LOCK_POLL_SECONDS[0]
    while not _try_lock(descriptor, path, lock_path):
        if time.monotonic() >= deadline:
            raise TokenStoreError(
                path,
                f"stayed locked by another run for {wait_seconds:.0f} s ({lock_path}); "
                "if no other run is active, delete that lock file",
            )
        time.sleep(pause)
        pause = min(pause * 2, _LOCK_POLL_SECONDS[1])


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(descriptor: int, path: Path, lock_path: Path) -> bool:
        try:
            msvcrt.locking(descriptor, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

else:
    import fcntl

    def _try_lock(descriptor: int, path: Path, lock_path: Path) -> bool:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        except OSError as error:
            raise TokenStoreError(
                path, f"could not be locked: {lock_path}: {_reason(error)}"
            ) from None
        return True
