"""``tap-smartforms doctor``: what the real server honours of what the tap assumes.

Much of the API is assumed (``docs/api-contract.md``). The doctor asks each data
source a few small, telling questions and prints one plain-text report a user can
paste into a bug report: does the token refresh (and is the rotated one saved),
does the server honour ``limit``, ``offset`` and ``updatedFrom``, send an integer
``total``, sort by ``createdAt`` then ``id``, cap pages without saying so, which
timestamp styles it uses, and what differs from the assumed fields.

It refreshes and fetches through the tap's own client (``tap.build_client``), so
the token store, retries, the request budget and the redaction of secrets are the
sync's own, and a rotated refresh token is saved exactly as a sync saves it. Per
data source it costs one token refresh and at most ``MAX_DATA_REQUESTS`` data
requests (plus retries of transient failures). Checks are small functions over
the pages fetched, each returning a ``CheckResult``; ``render`` writes the report.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import platform
import re
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import requests

from tap_smartforms import api_shape
from tap_smartforms import settings as settings_module
from tap_smartforms.attachments import shown_url, unwritable_reason
from tap_smartforms.client import DataSourceClient, PageTooLarge
from tap_smartforms.errors import REDACTOR, DataSourceError
from tap_smartforms.timestamps import TimestampError, parse_timestamp
from tap_smartforms.token_store import EntryKey, TokenStore, TokenStoreError, open_store

Status = Literal["ok", "WARN", "FAIL"]
OK: Status = "ok"
WARN: Status = "WARN"
FAIL: Status = "FAIL"

PROG = "tap-smartforms doctor"
# `--config ENV` reads the settings from these variables, as Meltano sets them.
ENV_CONFIG = "ENV"
ENV_PREFIX = "TAP_SMARTFORMS_"

SMALL_PAGE = 2
# An instant no response can have been updated at or after.
FAR_FUTURE = datetime(2999, 1, 1, tzinfo=timezone.utc)
# offset 0 limit 2; offset 1 limit 2; updatedFrom far future; limit 500; past limit 500.
MAX_DATA_REQUESTS = 5


class ConfigError(Exception):
    """The config could not be read; the message names the file or variable."""


# ------------------------------------------------------------------ results


@dataclass(frozen=True)
class CheckResult:
    """One line of the report: a check, its verdict, and why (plus any further lines)."""

    name: str
    status: Status
    detail: str
    more: tuple[str, ...] = ()


@dataclass
class SourceReport:
    data_source_id: str
    host: str
    results: list[CheckResult] = field(default_factory=list)


@dataclass(frozen=True)
class Fetched:
    """One page the doctor asked for, and what came back: a page or a one-line error."""

    offset: int
    limit: int
    updated_from: datetime | None = None
    page: api_shape.Page | None = None
    payload: object = None  # the decoded reply, before shaping
    error: str | None = None
    too_large: bool = False  # the error is a 413

    @property
    def received(self) -> int:
        return 0 if self.page is None else self.page.received

    @property
    def ids(self) -> list[str]:
        return [] if self.page is None else [str(b.record["id"]) for b in self.page.responses]

    def asked(self) -> str:
        since = f" {api_shape.UPDATED_FROM_PARAM} {FAR_FUTURE.date()}" if self.updated_from else ""
        return f"offset {self.offset} limit {self.limit}{since}"


Fetch = Callable[[int, int, "datetime | None"], Fetched]
"""``fetch(offset, limit, updated_from)``: one page, never raising for the API's sake."""


# ------------------------------------------------------------------ the checks


class AccessTokens(Protocol):
    def access_token(self) -> str: ...


def check_token(
    authenticator: AccessTokens, store: TokenStore, key: EntryKey, warning_days: int
) -> CheckResult:
    """Refresh the token chain once; say whether the rotated token was saved."""
    try:
        before = store.read(key)
        authenticator.access_token()
        after = store.read(key)
    except DataSourceError as error:
        return CheckResult("token", FAIL, error.problem)
    except TokenStoreError as error:
        return CheckResult("token", FAIL, str(error))
    rotated = after is not None and (before is None or after.refresh_token != before.refresh_token)
    detail = (
        f"refreshed; the rotated refresh token is saved in {store.path}"
        if rotated
        else "refreshed; the token endpoint kept the refresh token as it was (no rotation)"
    )
    warning = None if after is None else after.expiry_warning(store.clock(), warning_days)
    if warning:
        return CheckResult("token", WARN, f"{detail}; but {warning}")
    return CheckResult("token", OK, detail)


def check_data(first: Fetched) -> CheckResult:
    if first.page is None:
        return CheckResult(
            "data", FAIL, f"{first.error}; the other checks need this page, so they did not run"
        )
    form = first.page.form
    form_text = f"form {form['id']}" if form else "no form object in the reply"
    total = first.page.total
    total_text = f"{total} responses" if total is not None else "no total"
    return CheckResult("data", OK, f"the data endpoint answers ({form_text}, {total_text})")


def check_limit(first: Fetched) -> CheckResult:
    got = first.received
    if got <= first.limit:
        return CheckResult("limit", OK, f"asked for {first.limit}, got {got}")
    return CheckResult(
        "limit",
        WARN,
        f"ignored: asked for {first.limit}, got {got}; the tap still pages correctly (it goes "
        "on from what it got), but big pages may hit the API's 5 MB reply limit",
    )


def check_offset(first: Fetched, second: Fetched) -> CheckResult:
    if second.page is None:
        return CheckResult("offset", FAIL, f"{second.asked()}: {second.error}")
    first_ids, second_ids = first.ids, second.ids
    if len(first_ids) < 2:
        return CheckResult(
            "offset", WARN, "cannot tell: the data source has fewer than 2 responses"
        )
    if second_ids and second_ids[0] == first_ids[1]:
        return CheckResult(
            "offset", OK, "offset 1 starts with the 2nd response of offset 0, as assumed"
        )
    if second_ids and second_ids[0] == first_ids[0]:
        return CheckResult(
            "offset",
            FAIL,
            "ignored: offset 1 starts with the 1st response of offset 0 again, so the tap "
            "cannot page past the first page (it stops this data source with an error)",
        )
    started = f"response {second_ids[0]}" if second_ids else "no response"
    return CheckResult(
        "offset",
        FAIL,
        f"not as assumed: offset 1 starts with {started}, not with the 2nd response of "
        f"offset 0 ({first_ids[1]}); the server may count offset in pages, not responses",
    )


def check_updated_from(first: Fetched, future: Fetched) -> CheckResult:
    name = api_shape.UPDATED_FROM_PARAM
    if future.page is None:
        return CheckResult(
            name,
            FAIL,
            f"the server refused {future.asked()}: {future.error}; incremental runs would fail",
        )
    if first.received == 0:
        return CheckResult(name, WARN, "cannot tell: the data source has no responses")
    if future.received == 0:
        return CheckResult(
            name, OK, f"honoured: nothing is updated after {FAR_FUTURE.date()}, none came back"
        )
    return CheckResult(
        name,
        WARN,
        f"ignored: asked for responses updated from {FAR_FUTURE.date()}, got "
        f"{future.received}; the tap filters on its side, correct but slower",
    )


def check_total(first: Fetched) -> CheckResult:
    name = api_shape.TOTAL_FIELD
    payload = first.payload
    sent = isinstance(payload, Mapping) and name in payload
    if first.page is not None and first.page.total is not None:
        return CheckResult(name, OK, f"present and an integer ({first.page.total})")
    if sent:
        assert isinstance(payload, Mapping)
        return CheckResult(
            name,
            WARN,
            f"not an integer (a JSON {_json_type(payload[name])}); the tap ignores it and ends "
            "on the first page shorter than asked for (correct), and logs no total",
        )
    return CheckResult(
        name,
        WARN,
        "not sent; the tap ends on the first page shorter than asked for (correct) and logs "
        "progress without a total",
    )


def check_page_size(full: Fetched, after: Fetched | None) -> CheckResult:
    """Ask for the most the API allows: fewer back than there are, without the reply
    saying so (its ``limit``), is a silent cap (pagination.py copes with one)."""
    name = "page size"
    asked = full.limit
    if full.page is None:
        if full.too_large:
            return CheckResult(
                name,
                WARN,
                f"a page of {asked} exceeds the API's 5 MB reply limit (HTTP 413); the tap "
                "halves the page and carries on; a lower page_size saves those requests",
            )
        return CheckResult(name, FAIL, f"{full.asked()}: {full.error}")
    got, total, says = full.received, full.page.total, full.page.limit
    if says is not None and 1 <= says < asked:
        return CheckResult(
            name,
            WARN,
            f"the server caps pages at {says} and says so (limit {says} in the reply); the "
            "tap adapts its page size",
        )
    if got > asked:
        return CheckResult(name, WARN, f"asked for {asked}, got {got}: more than asked for")
    if total is not None:
        expected = min(asked, total)
        if got < expected:
            return _silent_cap(asked, got, f"of {total}")
        return CheckResult(name, OK, f"asked for {asked}, got {got} of {total}")
    if got in (asked, 0):
        return CheckResult(name, OK, f"asked for {asked}, got {got} (no total sent)")
    if after is None:
        return CheckResult(name, WARN, f"asked for {asked}, got {got}; cannot tell a cap apart")
    if after.page is None:
        return CheckResult(
            name, WARN, f"cannot tell whether {got} is a cap: {after.asked()}: {after.error}"
        )
    if after.received:
        return _silent_cap(asked, got, f"while offset {got} still holds {after.received} more")
    return CheckResult(
        name,
        OK,
        f"asked for {asked}, got {got} and nothing after them (no total sent): "
        "all responses fit in one page",
    )


def _silent_cap(asked: int, got: int, context: str) -> CheckResult:
    # The pager notices (total says there is more, or the page after a short one
    # brings new responses) and goes on with the size it got: correct, but each
    # short page costs a request more, and the server differs from the contract.
    return CheckResult(
        "page size",
        WARN,
        f"silent cap: asked for {asked}, got {got} {context}, and the reply does not say so; "
        f"the tap notices and goes on with pages of {got}; page_size {got} saves requests",
    )


def check_sort_order(fetched: Sequence[Fetched]) -> CheckResult:
    """createdAt ascending, then id, over the longest run of responses fetched."""
    name = "sort order"
    pages = [f.page for f in fetched if f.page is not None and f.updated_from is None]
    longest = max(pages, key=lambda page: len(page.responses), default=None)
    keyed = [
        (parse_timestamp(b.record["created_at"]), str(b.record["id"]))
        for b in (longest.responses if longest else [])
        if b.record["created_at"]
    ]
    if len(keyed) < 2:
        return CheckResult(name, WARN, "cannot tell: fewer than 2 responses with a createdAt")
    for position, (earlier, later) in enumerate(itertools.pairwise(keyed), start=1):
        if later < earlier:
            return CheckResult(
                name,
                WARN,
                f"not createdAt ascending, then id, as assumed: response {later[1]} (position "
                f"{position + 1}) comes after {earlier[1]}; the tap still reads every response "
                "(it notices a list that shifts under it), but edits may cost re-reads",
            )
    return CheckResult(name, OK, f"{len(keyed)} responses in createdAt, then id, order, as assumed")


_COLONLESS_OFFSET = re.compile(r"[+-]\d{4}$")
_COLON_OFFSET = re.compile(r"[+-]\d{2}:\d{2}$")
EPOCH = "epoch numbers"
UNREADABLE = "unreadable"
NO_OFFSET = "no offset"


def timestamp_style(value: object) -> str:
    """How the server wrote one timestamp: ``Jira +0000``, ``Z``, ``+00:00``, epoch
    numbers (or as text), no offset, or unreadable."""
    if isinstance(value, bool):
        return UNREADABLE
    if isinstance(value, (int, float)):
        return EPOCH
    if not isinstance(value, str):
        return UNREADABLE
    text = value.strip()
    if text.isdigit():
        return "epoch numbers as text"
    try:
        parse_timestamp(text)
    except TimestampError:
        return UNREADABLE
    if text.endswith(("Z", "z")):
        return "Z"
    if _COLONLESS_OFFSET.search(text):
        return "Jira +0000"
    if _COLON_OFFSET.search(text):
        return "+00:00"
    return NO_OFFSET


def check_timestamps(payloads: Sequence[object]) -> CheckResult:
    name = "timestamps"
    styles = Counter(
        timestamp_style(value)
        for payload in payloads
        for value in api_shape.raw_timestamps(payload)
    )
    if not styles:
        return CheckResult(name, WARN, "cannot tell: no timestamps in the replies")
    seen = ", ".join(f"{style} x{count}" for style, count in styles.most_common())
    read = sum(styles.values())
    if styles[UNREADABLE]:
        return CheckResult(name, FAIL, f"{read} read, some the tap cannot read: {seen}")
    if styles[NO_OFFSET]:
        return CheckResult(
            name,
            WARN,
            f"{read} read: {seen}; those without an offset are taken as UTC, wrong if the "
            "server means its own time zone",
        )
    return CheckResult(name, OK, f"{read} read: {seen}; the tap reads every one of these styles")


def check_drift(report_lines: Sequence[str]) -> CheckResult:
    """The drift lines of ``FieldTally.report_lines()`` for the pages fetched."""
    if not report_lines:
        return CheckResult("API drift", OK, "the replies carry the assumed fields and no others")
    return CheckResult(
        "API drift",
        WARN,
        "the replies differ from the assumed shape (nothing is lost; paste this report "
        "into an issue):",
        tuple(report_lines),
    )


# ------------------------------------------------------------------ one data source


def page_checks(fetch: Fetch) -> list[CheckResult]:
    """Fetch the few pages the checks need (at most ``MAX_DATA_REQUESTS``) and check them."""
    first = fetch(0, SMALL_PAGE, None)
    if first.page is None:
        return [check_data(first)]
    second = fetch(1, SMALL_PAGE, None)
    future = fetch(0, SMALL_PAGE, FAR_FUTURE)
    full = fetch(0, api_shape.MAX_PAGE_SIZE, None)
    after = None
    if _cap_or_end(full):
        after = fetch(full.received, api_shape.MAX_PAGE_SIZE, None)
    fetched = [f for f in (first, second, future, full, after) if f is not None]
    return [
        check_data(first),
        check_limit(first),
        check_offset(first, second),
        check_updated_from(first, future),
        check_total(first),
        check_page_size(full, after),
        check_sort_order(fetched),
        check_timestamps([f.payload for f in fetched if f.page is not None]),
    ]


def check_attachments_path(path: str) -> CheckResult:
    """The sync's own probe (attachments.py): a file written under the path, then deleted."""
    reason = unwritable_reason(path)
    if reason is None:
        return CheckResult(
            "attachments_path", OK, f"{shown_url(path)}: a probe file was written and deleted"
        )
    return CheckResult("attachments_path", FAIL, reason)


def _cap_or_end(full: Fetched) -> bool:
    """Whether a short page of the largest size leaves open a silent cap: only the
    next page tells, when the reply says neither its total nor its limit."""
    page = full.page
    return (
        page is not None
        and page.total is None
        and page.limit in (None, full.limit)
        and 0 < page.received < full.limit
    )


class _DataReplies:
    """A ``requests`` response hook keeping the last decoded 200 reply of the data
    endpoint (the token endpoint's replies, which hold secrets, are never kept)."""

    def __init__(self, endpoint_url: str) -> None:
        self._endpoint_url = endpoint_url
        self.last: object = None

    def __call__(self, response: requests.Response, *args: object, **kwargs: object) -> None:
        url = (response.request.url or "") if response.request is not None else ""
        if response.status_code != 200 or not url.startswith(self._endpoint_url):
            return
        try:
            self.last = response.json()
        except (ValueError, requests.RequestException):
            self.last = None  # cut short: the client retries, and this hook runs again


def _fetcher(client: DataSourceClient, replies: _DataReplies) -> Fetch:
    def fetch(offset: int, limit: int, updated_from: datetime | None) -> Fetched:
        replies.last = None
        try:
            page = client.fetch_page(offset=offset, limit=limit, updated_from=updated_from)
        except PageTooLarge as error:
            return Fetched(offset, limit, updated_from, error=error.problem, too_large=True)
        except DataSourceError as error:
            return Fetched(offset, limit, updated_from, error=error.problem)
        return Fetched(offset, limit, updated_from, page=page, payload=replies.last)

    return fetch


def diagnose(
    source: settings_module.DataSourceSettings,
    settings: settings_module.TapSettings,
    store: TokenStore,
    *,
    user_agent: str,
    logger: logging.Logger,
) -> SourceReport:
    from tap_smartforms.tap import build_client  # noqa: PLC0415 - tap.py imports this module lazily

    report = SourceReport(source.data_source_id, _host(source.endpoint.url))
    replies = _DataReplies(source.endpoint.url)
    session = requests.Session()
    session.hooks["response"].append(replies)
    client = build_client(
        settings, source, store, user_agent=user_agent, logger=logger, session=session
    )
    key = EntryKey(settings.oauth_token_url, source.client_id, source.data_source_id)
    token = check_token(client.authenticator, store, key, settings.token_expiry_warning_days)
    report.results.append(token)
    if token.status == FAIL:
        return report
    report.results += page_checks(_fetcher(client, replies))
    if report.results[-1].name != "data":  # pages were read: their fields were tallied
        report.results.append(check_drift(client.field_tally.report_lines()))
    return report


def _host(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{host}:{parts.port}" if parts.port else host


def _json_type(value: object) -> str:
    return {str: "string", bool: "boolean", float: "number", dict: "object", list: "array"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


# ------------------------------------------------------------------ the report


def versions() -> str:
    def version(distribution: str) -> str:
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            return "?"

    return (
        f"tap-smartforms {version('tap-smartforms')}, Singer SDK {version('singer-sdk')}, "
        f"Python {platform.python_version()} on {sys.platform}"
    )


def render(
    reports: Sequence[SourceReport], store: Path, settings: Sequence[CheckResult] = ()
) -> str:
    """The report: versions, the checks of settings that are not a data source's
    (``settings``: attachments_path), then per data source one line per check."""
    results = [*settings, *(r for report in reports for r in report.results)]
    counts = Counter(r.status for r in results)
    lines = [
        PROG,
        f"  {versions()}",
        f"  token store {store}",
        f"  {len(reports)} data source{'s' if len(reports) != 1 else ''}; each costs one token "
        f"refresh and at most {MAX_DATA_REQUESTS} data requests",
    ]
    width = max((len(r.name) for r in results), default=0)
    if settings:
        lines += ["", "settings"]
        lines += [f"  {r.status:<4}  {r.name:<{width}}  {r.detail}" for r in settings]
    for report in reports:
        lines += ["", f"data source {report.data_source_id} ({report.host})"]
        for result in report.results:
            lines.append(f"  {result.status:<4}  {result.name:<{width}}  {result.detail}")
            lines += [f"  {'':<4}  {'':<{width}}    {more}" for more in result.more]
    if counts[FAIL]:
        verdict = f"{counts[FAIL]} FAIL, {counts[WARN]} WARN: the tap cannot run as configured"
    elif counts[WARN]:
        verdict = f"{counts[WARN]} WARN, no FAIL: the tap runs; the WARN lines say what differs"
    else:
        verdict = "every check ok"
    lines += ["", f"result: {verdict}"]
    return REDACTOR.redact("\n".join(lines)) + "\n"


# ------------------------------------------------------------------ the command


_BOOLEAN_WORDS = {"true": True, "false": False, "1": True, "0": False}


def config_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """The tap's settings from ``TAP_SMARTFORMS_<SETTING>`` variables (Meltano sets these
    for every command it runs): JSON for lists, text for the rest (settings.parse
    reads whole numbers from text; booleans as Meltano writes them, true or false)."""
    config: dict[str, Any] = {}
    for name, schema in settings_module.CONFIG_SCHEMA["properties"].items():
        variable = ENV_PREFIX + name.upper()
        if variable not in environ:
            continue
        types = schema.get("type", [])
        kinds = {types} if isinstance(types, str) else set(types)
        if "boolean" in kinds and environ[variable].strip().lower() in _BOOLEAN_WORDS:
            config[name] = _BOOLEAN_WORDS[environ[variable].strip().lower()]
        elif {"array", "object"} & kinds:
            try:
                config[name] = json.loads(environ[variable])
            except ValueError:
                raise ConfigError(f"{variable}: is not JSON") from None
        else:
            config[name] = environ[variable]
    return config


def load_config(paths: Sequence[str], environ: Mapping[str, str]) -> dict[str, Any]:
    """Every ``--config`` merged in order, as the tap does; ``ENV`` is the variables."""
    config: dict[str, Any] = {}
    for path in paths:
        if path == ENV_CONFIG:
            config.update(config_from_env(environ))
            continue
        try:
            loaded = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as error:
            raise ConfigError(f"--config {path}: cannot be read ({error.strerror})") from None
        except ValueError:
            raise ConfigError(f"--config {path}: is not JSON") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"--config {path}: is not a JSON object")
        config.update(loaded)
    return config


def _arguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Check each data source of the config against the API: the token, and "
        "what the server honours of what the tap assumes. Prints a report to paste into a "
        "bug report (no secrets); exits 1 when a check FAILs.",
    )
    parser.add_argument(
        "--config",
        action="append",
        required=True,
        help=f"the tap's config file (repeatable), or {ENV_CONFIG} for the {ENV_PREFIX}* variables",
    )
    return parser.parse_args(argv)


def _stderr_logger() -> logging.Logger:
    """Warnings (retries, expiry) to stderr, redacted; stdout holds the report alone."""
    logger = logging.getLogger("tap-smartforms.doctor")
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(f"{PROG}: %(levelname)s %(message)s"))
        handler.addFilter(REDACTOR)
        logger.addHandler(handler)
    return logger


def run(argv: Sequence[str] | None = None) -> int:
    args = _arguments(sys.argv[1:] if argv is None else argv)
    try:
        settings = settings_module.parse(load_config(args.config, os.environ))
    except ConfigError as error:
        sys.stderr.write(f"{PROG}: {error}\n")
        return 2
    except settings_module.SettingsError as error:
        for problem in error.problems:
            sys.stderr.write(f"{PROG}: invalid config: {problem}\n")
        return 2
    for source in settings.data_sources:
        REDACTOR.register(source.refresh_token, source.client_secret)
    store = open_store(settings.token_store_path)
    logger = _stderr_logger()
    user_agent = f"tap-smartforms/{metadata.version('tap-smartforms')} (doctor)"
    reports = []
    for source in settings.data_sources:
        try:
            report = diagnose(source, settings, store, user_agent=user_agent, logger=logger)
        except Exception as error:  # one data source's bug must not hide the others' report
            report = SourceReport(source.data_source_id, _host(source.endpoint.url))
            problem = REDACTOR.redact(f"{type(error).__name__}: {error}")
            report.results.append(CheckResult("doctor", FAIL, f"unexpected error: {problem}"))
        reports.append(report)
    path = settings.attachments_path
    setting_checks = [check_attachments_path(path)] if path is not None else []
    sys.stdout.write(render(reports, store.path, setting_checks))
    results = [*setting_checks, *(r for report in reports for r in report.results)]
    failed = any(r.status == FAIL for r in results)
    return 1 if failed else 0
