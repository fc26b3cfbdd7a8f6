"""tap-smartforms: Smart Forms for Jira responses, from the Data Source API."""

from __future__ import annotations

import atexit
import copy
import datetime
import logging
import sys
from collections.abc import Callable
from functools import cached_property

import requests
from singer_sdk import Stream
from singer_sdk.contrib.msgspec import MsgSpecWriter
from typing_extensions import override

from tap_smartforms import settings as settings_module
from tap_smartforms import transport
from tap_smartforms.attachments import (
    AttachmentDownloader,
    AttachmentStore,
    writability_problem,
)
from tap_smartforms.auth import OAuthClient, RefreshTokenAuthenticator
from tap_smartforms.client import DataSourceClient
from tap_smartforms.errors import REDACTOR, install_redactor
from tap_smartforms.output import PageWriter
from tap_smartforms.page_loop import SyncRun
from tap_smartforms.ratelimit import SlidingWindowLimiter
from tap_smartforms.refresh_gate import REFRESH_GATE, STOP_WAIT_SECONDS, stop_refreshes
from tap_smartforms.report import RunReport
from tap_smartforms.sdk_bridge import BridgedTap, silence_unsorted_stream_warning
from tap_smartforms.settings import TapSettings
from tap_smartforms.streams import all_streams
from tap_smartforms.token_store import EntryKey, RefreshTokenSource, TokenStore, open_store


class TapSmartForms(BridgedTap):
    """Smart Forms for Jira responses: forms, questions, responses, answers, attachments."""

    name = "tap-smartforms"
    package_name = "tap-smartforms"
    # A copy: the SDK appends its own settings to this dict in place, and
    # settings.CONFIG_SCHEMA must stay the tap's own (defaults, bounds, known keys).
    config_jsonschema = copy.deepcopy(settings_module.CONFIG_SCHEMA)
    # SCHEMA, STATE and the records that take the SDK's path (output.py) are written
    # with msgspec: the SDK's own faster writer.
    message_writer_class = MsgSpecWriter

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.sync_started_at = datetime.datetime.now(datetime.timezone.utc)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    @override
    def config_problems(self) -> list[str]:
        return settings_module.validate(self.config)

    @override
    def discover_streams(self) -> list[Stream]:
        return all_streams(self, services=self)

    @cached_property
    def settings(self) -> TapSettings:
        parsed = settings_module.parse(self.config)
        for source in parsed.data_sources:
            REDACTOR.register(source.refresh_token, source.client_secret)
        return parsed

    @cached_property
    def run(self) -> SyncRun:
        return SyncRun(
            streams=self.streams,
            clients={
                source.data_source_id: self._client_for(source)
                for source in self.settings.data_sources
            },
            # The SDK's reading of batch_config (responses opts out of the SDK's batch
            # loop, see ResponsesStream.get_batch_config; forms does not).
            pages=PageWriter(self.streams, self.streams["forms"].get_batch_config(self.config)),
            report=RunReport(self.logger),
            logger=self.logger,
            attachments=self._attachment_downloader(),
        )

    def _attachment_downloader(self) -> AttachmentDownloader | None:
        settings = self.settings
        if settings.attachments_path is None:
            return None
        return AttachmentDownloader(
            AttachmentStore(settings.attachments_path),
            workers=settings.attachment_downloads_in_parallel,
            max_bytes=settings.max_attachment_bytes,
            deadline_seconds=settings.request_timeout_seconds,
            patience_seconds=settings.max_retry_seconds,
            logger=self.logger,
        )

    @cached_property
    def token_store(self) -> TokenStore:
        return open_store(self.settings.token_store_path)

    def _client_for(self, source: settings_module.DataSourceSettings) -> DataSourceClient:
        return build_client(
            self.settings,
            source,
            self.token_store,
            user_agent=f"{self.name}/{self.plugin_version}",
            logger=self.logger,
        )

    @override
    def on_termination_signal(self) -> None:
        # The workers start no new refresh; the wait for those in flight happens in
        # around_sync_all's finally, or at exit.
        REFRESH_GATE.close(wait_seconds=0)

    def _stop_refreshes(self) -> None:
        if in_flight := REFRESH_GATE.in_flight:
            self.logger.info(
                "waiting for %d token refresh(es) in flight to be saved before stopping",
                in_flight,
            )
        if not stop_refreshes():
            self.logger.warning(
                "stopping while a token refresh is still in flight after %.0f s; if the "
                "next run reports invalid_grant, authorize that data source again",
                STOP_WAIT_SECONDS,
            )

    @override
    def around_sync_all(self, sync_all: Callable[[], None]) -> None:
        # Ends every run with a per-data-source summary and a non-zero exit when any
        # data source failed. The final STATE has already been written by then, so
        # healthy data sources keep their progress.
        install_redactor((self.logger,))
        silence_unsorted_stream_warning()
        # Before any request and any message: a path that cannot take the files would
        # otherwise fail every file of every page, one warning at a time.
        path = self.settings.attachments_path
        if path is not None and (problem := writability_problem(path)):
            self.logger.error("%s", problem)
            sys.exit(1)
        try:
            sync_all()
        finally:
            # Every way out of a sync passes here, SIGTERM and SIGINT included (the
            # SDK's handler raises SystemExit in this thread): no exit mid-refresh.
            self._stop_refreshes()
        self.run.report.log_summary(
            {
                data_source_id: client.field_tally.report_lines()
                for data_source_id, client in self.run.clients.items()
            }
        )
        if failed := self.run.report.failed:
            self.logger.error(
                "%d of %d data sources failed; see the lines above for what to fix",
                len(failed),
                len(self.run.report.sources),
            )
            sys.exit(1)


def build_client(
    settings: TapSettings,
    source: settings_module.DataSourceSettings,
    token_store: TokenStore,
    *,
    user_agent: str,
    logger: logging.Logger,
    session: requests.Session | None = None,
) -> DataSourceClient:
    """One data source's client: its token chain (kept in ``token_store``), its request
    budget and its HTTP session. The tap and ``tap-smartforms doctor`` both build
    clients here, so the doctor refreshes and fetches exactly as a sync does."""
    session = session or transport.new_session()
    limits = transport.ReplyLimits(deadline_seconds=settings.request_timeout_seconds)
    patience = float(settings.max_retry_seconds)
    token_url = settings.oauth_token_url
    authenticator = RefreshTokenAuthenticator(
        source.data_source_id,
        OAuthClient(token_url, source.client_id, source.client_secret),
        source.refresh_token,
        token_source=RefreshTokenSource(
            token_store,
            EntryKey(token_url, source.client_id, source.data_source_id),
            source.refresh_token,
        ),
        expiry_warning_days=settings.token_expiry_warning_days,
        session=session,
        logger=logger,
        limits=limits,
        patience_seconds=patience,
    )
    return DataSourceClient(
        source.endpoint,
        authenticator,
        SlidingWindowLimiter(settings.requests_per_minute),
        user_agent=user_agent,
        logger=logger,
        session=session,
        limits=limits,
        patience_seconds=patience,
    )


def main() -> None:
    """Console script entry point; ``tap-smartforms auth ...`` is tap-smartforms-auth,
    ``tap-smartforms doctor ...`` checks the config against the API (doctor.py)."""
    # The last resort for exits that bypass sync_all (``--test`` ends the process
    # from the SDK's callback; the doctor; an uncaught error). atexit runs before the
    # interpreter stops daemon threads, so a refresh in flight still gets saved.
    atexit.register(stop_refreshes)
    if sys.argv[1:2] == ["auth"]:
        from tap_smartforms import auth_helper  # noqa: PLC0415 - only this command needs it

        sys.exit(auth_helper.run(sys.argv[2:]))
    if sys.argv[1:2] == ["doctor"]:
        from tap_smartforms import doctor  # noqa: PLC0415 - only this command needs it

        sys.exit(doctor.run(sys.argv[2:]))
    TapSmartForms.cli()
