"""Progress while a run goes, and the summary at its end: per data source, on stderr."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tap_smartforms.attachments import PageDownloads

PROGRESS_INTERVAL_SECONDS = 10.0


@dataclass
class SourceProgress:
    data_source_id: str
    started_at: float
    pages: int = 0
    responses: int = 0
    total: int | None = None
    retries: int = 0
    token_retries: int = 0
    failure: str | None = None
    attachments_stored: int = 0
    attachments_failed: int = 0
    finished: bool = False
    last_logged_at: float = 0.0


@dataclass
class RunReport:
    """What each data source did; the run fails if any data source failed."""

    logger: logging.Logger
    clock: Callable[[], float] = time.monotonic
    sources: dict[str, SourceProgress] = field(default_factory=dict)

    def progress(self, data_source_id: str) -> SourceProgress:
        """The data source's progress, started the first time it is asked for (when
        its first page or failure arrives: with parallel workers, not all at once)."""
        if (progress := self.sources.get(data_source_id)) is None:
            progress = SourceProgress(data_source_id, started_at=self.clock())
            progress.last_logged_at = progress.started_at
            self.sources[data_source_id] = progress
        return progress

    def page_done(self, progress: SourceProgress, responses: int, total: int | None) -> None:
        progress.pages += 1
        progress.responses += responses
        if total is not None:
            progress.total = total
        now = self.clock()
        if now - progress.last_logged_at >= PROGRESS_INTERVAL_SECONDS:
            progress.last_logged_at = now
            self.logger.info("%s", self._progress_line(progress, now))

    def attachments_done(self, progress: SourceProgress, page: PageDownloads) -> None:
        progress.attachments_stored += page.stored
        progress.attachments_failed += page.failed

    def finish(self, progress: SourceProgress, retries: int, token_retries: int = 0) -> None:
        progress.finished = True
        progress.retries = retries
        progress.token_retries = token_retries
        self.logger.info("%s, done", self._progress_line(progress, self.clock()))

    def fail(
        self, progress: SourceProgress, reason: str, retries: int, token_retries: int = 0
    ) -> None:
        progress.failure = reason
        progress.retries = retries
        progress.token_retries = token_retries
        self.logger.error("%s", reason)

    @property
    def failed(self) -> list[SourceProgress]:
        return [progress for progress in self.sources.values() if progress.failure]

    def log_summary(self, drift: Mapping[str, list[str]]) -> None:
        """The per-data-source summary, then how each one's replies differ from the
        shape the tap assumes (``drift``: report lines per data source id)."""
        if not self.sources:
            return
        self.logger.info(
            "Summary: %d data sources, %d synced, %d failed",
            len(self.sources),
            sum(1 for progress in self.sources.values() if progress.finished),
            len(self.failed),
        )
        for progress in self.sources.values():
            # The reason starts by naming the data source (for its own error line);
            # this line names it already.
            reason = (progress.failure or "").removeprefix(
                f"data source {progress.data_source_id}: "
            )
            outcome = f"FAILED: {reason}" if progress.failure else "ok"
            files = ""
            if progress.attachments_stored or progress.attachments_failed:
                files = (
                    f", {progress.attachments_stored} attachment files stored, "
                    f"{progress.attachments_failed} not downloaded"
                )
            self.logger.info(
                "  data source %s: %d responses, %d pages, %d retries, %d token retries%s, %s",
                progress.data_source_id,
                progress.responses,
                progress.pages,
                progress.retries,
                progress.token_retries,
                files,
                outcome,
            )
        for data_source_id, lines in drift.items():
            for line in lines:
                self.logger.warning("data source %s: API drift: %s", data_source_id, line)

    @staticmethod
    def _progress_line(progress: SourceProgress, now: float) -> str:
        elapsed = max(now - progress.started_at, 1e-9)
        of_total = f" of {progress.total}" if progress.total is not None else ""
        return (
            f"data source {progress.data_source_id}: {progress.pages} pages, "
            f"{progress.responses}{of_total} responses, {progress.responses / elapsed:.0f}/s"
        )
