"""What the emulator saw: counters, a request log, and snapshots of them."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple


class RequestLogEntry(NamedTuple):
    """One data request: when (emulator clock), for what, and the reply status (0: none)."""

    time: float
    ds_id: str
    offset: int
    limit: int
    status: int


@dataclass(frozen=True)
class Stats:
    """A snapshot of the emulator's counters; taking one is thread-safe."""

    data_requests: int
    data_requests_by_ds: dict[str, int]
    status_counts: dict[int, int]
    """Data replies by status; 0 counts connections closed without a reply."""
    served_429: int
    """Every 429 data reply, from the rate limiter or a queued fault."""
    rate_limited: int
    """429 data replies from the rate limiter alone."""
    token_requests: int
    token_status_counts: dict[int, int]
    refreshes: int
    """Successful refresh_token grants (stale uses inside the reuse window included)."""
    code_exchanges: int
    stale_refresh_uses: int
    invalid_grants: int
    revoked_chains: int
    revoked_chain_data_sources: list[str]
    max_requests_in_any_60s_window: dict[str, int]
    """Per token chain id: the most served data requests in any 60 s window."""
    max_requests_in_any_60s_window_by_ds: dict[str, int]
    """The same per data source (the largest over its chains)."""
    request_log: list[RequestLogEntry]
    callback_errors: list[str] = field(default_factory=list)
    """Exceptions raised by the ``on_data_request`` callback (as ``repr``)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class StatsRecorder:
    """Thread-safe counters the server, the token service and the limiter update."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data_by_ds: Counter[str] = Counter()
        self._status: Counter[int] = Counter()
        self._token_status: Counter[int] = Counter()
        self._counts: Counter[str] = Counter()
        self._revoked_ds: list[str] = []
        self._log: list[RequestLogEntry] = []
        self._callback_errors: list[str] = []

    def count(self, name: str, amount: int = 1) -> None:
        """Add to a named counter: ``refreshes``, ``code_exchanges``, ``stale_refresh_uses``..."""
        with self._lock:
            self._counts[name] += amount

    def data_request(self, ds_id: str) -> int:
        """Count a data request; returns how many this data source has had, this one included."""
        with self._lock:
            self._counts["data_requests"] += 1
            self._data_by_ds[ds_id] += 1
            return self._data_by_ds[ds_id]

    def data_reply(self, entry: RequestLogEntry, rate_limited: bool = False) -> None:
        with self._lock:
            self._status[entry.status] += 1
            self._log.append(entry)
            if entry.status == 429:
                self._counts["served_429"] += 1
            if rate_limited:
                self._counts["rate_limited"] += 1

    def token_reply(self, status: int) -> None:
        with self._lock:
            self._counts["token_requests"] += 1
            self._token_status[status] += 1

    def chain_revoked(self, ds_id: str) -> None:
        with self._lock:
            self._counts["revoked_chains"] += 1
            self._revoked_ds.append(ds_id)

    def callback_error(self, error: BaseException) -> None:
        with self._lock:
            self._callback_errors.append(repr(error))

    def snapshot(self, windows: dict[str, int], window_ds: dict[str, str]) -> Stats:
        """Freeze the counters; ``windows`` and ``window_ds`` come from the rate limiter."""
        by_ds: dict[str, int] = {}
        for chain_id, most in windows.items():
            ds_id = window_ds[chain_id]
            by_ds[ds_id] = max(by_ds.get(ds_id, 0), most)
        with self._lock:
            counts = self._counts
            return Stats(
                data_requests=counts["data_requests"],
                data_requests_by_ds=dict(self._data_by_ds),
                status_counts=dict(self._status),
                served_429=counts["served_429"],
                rate_limited=counts["rate_limited"],
                token_requests=counts["token_requests"],
                token_status_counts=dict(self._token_status),
                refreshes=counts["refreshes"],
                code_exchanges=counts["code_exchanges"],
                stale_refresh_uses=counts["stale_refresh_uses"],
                invalid_grants=counts["invalid_grants"],
                revoked_chains=counts["revoked_chains"],
                revoked_chain_data_sources=list(self._revoked_ds),
                max_requests_in_any_60s_window=dict(windows),
                max_requests_in_any_60s_window_by_ds=by_ds,
                request_log=list(self._log),
                callback_errors=list(self._callback_errors),
            )
