"""Settings: the JSON schema users see, and validation that says what to fix.

``CONFIG_SCHEMA`` is the one declaration of every setting: its type, bounds
(``minimum``/``maximum``) and default. ``--about``, Meltano and the README show it,
and ``parse`` reads each setting's default and bounds from it, so none is stated twice.

The SDK's own validation prints the offending values, which would put client
secrets and refresh tokens in the log; ``validate`` names the entry and the
setting instead, never the value.

Why the SDK's ``th.PropertiesList`` and not msgspec Structs: msgspec stops at the
first error (users are told every problem at once), its messages would need
rewriting setting by setting anyway ("Expected `int` >= 1 - at `$.page_size`"), and
its JSON schema has no ``secret`` flag and nests optional types in ``anyOf``, so
``--about`` and Meltano would lose which settings are secrets and their kinds.
"""

from __future__ import annotations

import difflib
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import jsonschema
from singer_sdk import typing as th
from singer_sdk.helpers.capabilities import BATCH_CONFIG, FLATTENING_CONFIG, STREAM_MAPS_CONFIG

from tap_smartforms import api_shape, retry, transport
from tap_smartforms.errors import token_text_problem
from tap_smartforms.timestamps import TimestampError, parse_timestamp

DEFAULT_TOKEN_URL = "https://auth.atlassian.com/oauth/token"  # noqa: S105 - a URL, not a secret
_MAX_SECONDS_SETTING = 3600

CONFIG_SCHEMA = th.PropertiesList(
    th.Property(
        "data_sources",
        th.ArrayType(
            th.ObjectType(
                th.Property(
                    "url",
                    th.StringType,
                    required=True,
                    description="The data source URL as copied from the Data Source modal "
                    "(it carries dataSourceId).",
                ),
                th.Property(
                    "refresh_token",
                    th.StringType,
                    secret=True,
                    description="This data source's OAuth refresh token (may be left out "
                    "when tap-smartforms-auth stored it in the token store).",
                ),
                th.Property(
                    "client_id",
                    th.StringType,
                    description="OAuth client ID for this data source (default: client_id).",
                ),
                th.Property(
                    "client_secret",
                    th.StringType,
                    secret=True,
                    description="OAuth client secret for this data source "
                    "(default: client_secret).",
                ),
            )
        ),
        required=True,
        title="Data sources",
        description="One entry per form: its data source URL and refresh token.",
    ),
    th.Property("client_id", th.StringType, title="Client ID", description="OAuth client ID."),
    th.Property(
        "client_secret",
        th.StringType,
        secret=True,
        title="Client secret",
        description="OAuth client secret.",
    ),
    th.Property(
        "start_date",
        th.DateTimeType,
        title="Start date",
        description="Ignore responses updated before this instant (default: everything).",
    ),
    th.Property(
        "oauth_token_url",
        th.StringType,
        default=DEFAULT_TOKEN_URL,
        title="OAuth token URL",
        description="The token endpoint.",
    ),
    th.Property(
        "token_store_path",
        th.StringType,
        title="Token store path",
        description="Where rotated refresh tokens are kept between runs.",
    ),
    th.Property(
        "token_expiry_warning_days",
        th.IntegerType(minimum=0, maximum=365),
        # Read by token_store.StoredChain.expiry_warning.
        default=10,
        title="Token expiry warning days",
        description="Warn this many days before a data source's authorization runs out "
        "(90 days unused, 365 days after the first consent).",
    ),
    th.Property(
        "page_size",
        th.IntegerType(minimum=1, maximum=api_shape.MAX_PAGE_SIZE),
        default=api_shape.MAX_PAGE_SIZE,
        title="Page size",
        description="Responses per request, 1-500.",
    ),
    th.Property(
        "requests_per_minute",
        th.IntegerType(minimum=1, maximum=100_000),
        default=100,  # the API's documented limit per token
        title="Requests per minute",
        description="Request budget per token (the API allows 100).",
    ),
    th.Property(
        "parallel_data_sources",
        th.IntegerType(minimum=1, maximum=64),
        # Each data source has its own token, so its own request budget: parallelism
        # costs the API nothing. Eight keeps a nightly run of 100 forms latency-bound
        # without holding many pages in memory at once.
        default=8,
        title="Parallel data sources",
        description="Data sources fetched at the same time, 1-64 (each has its own token "
        "and request budget).",
    ),
    th.Property(
        "request_timeout_seconds",
        th.IntegerType(minimum=1, maximum=_MAX_SECONDS_SETTING),
        default=int(transport.DEFAULT_DEADLINE_SECONDS),
        title="Request timeout seconds",
        description="The most one request may take, reply headers and body together, "
        "1-3600; a slower reply is abandoned and retried.",
    ),
    th.Property(
        "max_retry_seconds",
        th.IntegerType(minimum=1, maximum=_MAX_SECONDS_SETTING),
        default=int(retry.MAX_TOTAL_SECONDS),
        title="Max retry seconds",
        description="How long one request is retried (rate limits, server errors, broken "
        "or late replies) before its data source fails, 1-3600.",
    ),
    # The SDK reads this one itself (Stream.emit_activate_version_messages) but, in
    # 0.54, does not add it to a tap's settings; declared here so --about lists it.
    th.Property(
        "emit_activate_version_messages",
        th.BooleanType,
        default=False,
        title="Emit ACTIVATE_VERSION messages",
        description="Send every form and question in every run as a new table version and "
        "end with ACTIVATE_VERSION for forms and questions, so the target removes (or marks "
        "in _sdc_deleted_at) forms and questions deleted in Smart Forms.",
    ),
    th.Property(
        "full_refresh_responses",
        th.BooleanType,
        default=False,
        title="Full refresh responses",
        description="Reconcile in every run: read every response of every data source "
        "(ignoring the bookmark) as a new table version and end with ACTIVATE_VERSION for "
        "responses, answers and attachments, so the target removes (or marks) deleted "
        "responses and replaced attachments.",
    ),
    th.Property(
        "reconcile_every_days",
        th.IntegerType(minimum=1, maximum=3650),
        title="Reconcile every days",
        description="Reconcile as full_refresh_responses does when the last reconcile "
        "(kept in the state) is this many days old or more, 1-3650 (default: never).",
    ),
    th.Property(
        "attachments_path",
        th.StringType,
        title="Attachments path",
        description="Download every attachment file once, before its link expires, to this "
        "folder or fsspec URL (s3://, gs://, az://; default: files are not downloaded).",
    ),
    th.Property(
        "max_attachment_bytes",
        th.IntegerType(minimum=1),
        title="Max attachment bytes",
        description="Larger files are not downloaded (their record says so; default: no limit).",
    ),
    th.Property(
        "attachment_downloads_in_parallel",
        th.IntegerType(minimum=1, maximum=32),
        # A few at a time keep a link from expiring while it waits, without crowding
        # the data source's request budget.
        default=4,
        title="Attachment downloads in parallel",
        description="Files downloaded at the same time, 1-32.",
    ),
).to_dict()


# The settings the SDK itself reads, as it appends them to the tap's schema for
# its capabilities (stream maps, flattening, batch: tests/unit/test_settings.py holds
# this to the SDK's append_builtin_config). emit_activate_version_messages, which
# the SDK's Stream reads without declaring it, is declared in CONFIG_SCHEMA instead.
SDK_SETTINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        **STREAM_MAPS_CONFIG["properties"],
        **FLATTENING_CONFIG["properties"],
        **BATCH_CONFIG["properties"],
    },
}
DATA_SOURCE_KEYS = tuple(CONFIG_SCHEMA["properties"]["data_sources"]["items"]["properties"])
# Longer "keys" are not typos of a setting: never echo them (a pasted token, say).
_MAX_SHOWN_KEY_LENGTH = 40


@dataclass(frozen=True)
class DataSourceSettings:
    """One configured data source, with its credentials resolved."""

    endpoint: api_shape.Endpoint
    refresh_token: str | None  # None: the token store holds this data source's chain
    client_id: str
    client_secret: str

    @property
    def data_source_id(self) -> str:
        return self.endpoint.data_source_id


@dataclass(frozen=True)
class TapSettings:
    data_sources: tuple[DataSourceSettings, ...]
    oauth_token_url: str
    start_date: datetime | None
    page_size: int
    requests_per_minute: int
    token_store_path: str | None
    parallel_data_sources: int
    token_expiry_warning_days: int
    request_timeout_seconds: int
    max_retry_seconds: int
    emit_activate_version_messages: bool
    full_refresh_responses: bool
    reconcile_every_days: int | None
    attachments_path: str | None
    max_attachment_bytes: int | None
    attachment_downloads_in_parallel: int


class SettingsError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def validate(config: Mapping[str, Any]) -> list[str]:
    """Every problem with the config, one line each, naming the setting (never its value)."""
    try:
        parse(config)
    except SettingsError as error:
        return error.problems
    return []


def parse(config: Mapping[str, Any]) -> TapSettings:
    """The config as typed settings. Raises SettingsError listing every problem."""
    problems: list[str] = _unknown_keys(
        config, known=(*CONFIG_SCHEMA["properties"], *SDK_SETTINGS_SCHEMA["properties"]), where=""
    )
    problems += _sdk_setting_problems(config)

    token_url = config.get("oauth_token_url") or DEFAULT_TOKEN_URL
    if not isinstance(token_url, str):
        problems.append("oauth_token_url: must be a URL")
    elif url_trouble := url_problem(token_url):
        problems.append(f"oauth_token_url: {url_trouble}")

    page_size = _whole_number(config, "page_size", problems)
    requests_per_minute = _whole_number(config, "requests_per_minute", problems)
    parallel = _whole_number(config, "parallel_data_sources", problems)
    warning_days = _whole_number(config, "token_expiry_warning_days", problems)
    request_timeout = _whole_number(config, "request_timeout_seconds", problems)
    max_retry = _whole_number(config, "max_retry_seconds", problems)

    start_date = None
    raw_start = config.get("start_date")
    if raw_start not in (None, ""):
        try:
            start_date = parse_timestamp(str(raw_start))
        except TimestampError:
            problems.append("start_date: must be an ISO-8601 date-time, e.g. 2026-01-01T00:00:00Z")

    activate_forms = _boolean(config, "emit_activate_version_messages", problems)
    full_refresh = _boolean(config, "full_refresh_responses", problems)
    reconcile_days = _optional_whole_number(config, "reconcile_every_days", problems)
    if config.get("batch_config"):
        if not any(problem.startswith("batch_config") for problem in problems):
            # Only once the SDK's schema is satisfied: one line per problem.
            problems += _batch_problems(config["batch_config"])
        if activate_forms or full_refresh or reconcile_days:
            # Targets built with the SDK load a batch file's rows without a table
            # version (Sink.process_batch_files adds no _sdc_ metadata), so an
            # ACTIVATE_VERSION would then delete every row just loaded.
            problems.append(
                "batch_config: cannot be combined with emit_activate_version_messages, "
                "full_refresh_responses or reconcile_every_days (targets load batch files "
                "without a table version, so ACTIVATE_VERSION would delete their rows)"
            )

    attachments_path = config.get("attachments_path") or None
    if attachments_path is not None and not isinstance(attachments_path, str):
        problems.append("attachments_path: must be a folder or an fsspec URL such as s3://bucket/x")
        attachments_path = None
    max_attachment = _optional_whole_number(config, "max_attachment_bytes", problems)
    downloads = _whole_number(config, "attachment_downloads_in_parallel", problems)

    store_path = config.get("token_store_path")
    if store_path is not None and not isinstance(store_path, str):
        problems.append("token_store_path: must be a path")
        store_path = None

    sources = _data_sources(config, problems)
    if problems:
        raise SettingsError(problems)
    return TapSettings(
        data_sources=tuple(source for _, source in sources),
        oauth_token_url=token_url,
        start_date=start_date,
        page_size=page_size,
        requests_per_minute=requests_per_minute,
        token_store_path=store_path or None,
        parallel_data_sources=parallel,
        token_expiry_warning_days=warning_days,
        request_timeout_seconds=request_timeout,
        max_retry_seconds=max_retry,
        emit_activate_version_messages=activate_forms,
        full_refresh_responses=full_refresh,
        reconcile_every_days=reconcile_days,
        attachments_path=attachments_path,
        max_attachment_bytes=max_attachment,
        attachment_downloads_in_parallel=downloads,
    )


def _boolean(config: Mapping[str, Any], name: str, problems: list[str]) -> bool:
    default = bool(CONFIG_SCHEMA["properties"][name].get("default", False))
    value = config.get(name)
    if value in (None, ""):
        return default
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        problems.append(f"{name}: must be true or false")
        return default
    return value


def _batch_problems(batch_config: Any) -> list[str]:
    """What the SDK's batch writers cannot do as configured, before any file is
    written. Types and the format's values are the SDK schema's to check
    (``_sdk_setting_problems``); this adds what its schema does not say."""
    if not isinstance(batch_config, Mapping):
        return []
    encoding = batch_config.get("encoding")
    storage = batch_config.get("storage")
    problems = []
    if not isinstance(encoding, Mapping) or "format" not in encoding:
        problems.append("batch_config.encoding.format: required, jsonl or parquet")
    elif encoding.get("format") == "jsonl" and encoding.get("compression") != "gzip":
        # The SDK's JSONLinesBatcher always gzips; a target told "none" could not read it.
        problems.append("batch_config.encoding.compression: must be gzip for jsonl")
    if storage is None or (isinstance(storage, Mapping) and "root" not in storage):
        problems.append("batch_config.storage.root: required, e.g. file:///var/batches")
    return problems


def _data_sources(
    config: Mapping[str, Any], problems: list[str]
) -> list[tuple[str, DataSourceSettings]]:
    """Each valid entry, with where it is in the config (for later messages)."""
    entries = config.get("data_sources")
    if not isinstance(entries, list) or not entries:
        problems.append("data_sources: required; list one entry (url, refresh_token) per form")
        return []
    sources: list[tuple[str, DataSourceSettings]] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        where = f"data_sources[{index}]"
        if not isinstance(entry, Mapping):
            problems.append(f"{where}: must be an object with url and refresh_token")
            continue
        problems += _unknown_keys(entry, known=DATA_SOURCE_KEYS, where=_entry_label(index, entry))
        url = entry.get("url")
        if not isinstance(url, str) or not url.strip():
            problems.append(f"{where}.url: required; copy it from the Data Source modal")
            continue
        if url_trouble := url_problem(url):
            problems.append(f"{where}.url: {url_trouble}")
            continue
        try:
            endpoint = api_shape.parse_data_source_url(url.strip())
        except ValueError as error:
            problems.append(f"{where}.url: {error}; copy the whole URL from the Data Source modal")
            continue
        where = f"{where} (data source {endpoint.data_source_id})"
        if endpoint.data_source_id in seen:
            problems.append(
                f"{where}: the same data source as data_sources[{seen[endpoint.data_source_id]}]"
            )
            continue
        seen[endpoint.data_source_id] = index

        credentials = {
            name: entry.get(name) or (config.get(name) if name != "refresh_token" else None)
            for name in ("refresh_token", "client_id", "client_secret")
        }
        # A missing refresh_token is not a config problem: tap-smartforms-auth may have
        # stored it. The first refresh looks it up (token_store.RefreshTokenSource.pick)
        # and fails this data source alone when no store holds it.
        refresh_token = credentials.pop("refresh_token")
        missing = [
            name for name, value in credentials.items() if not isinstance(value, str) or not value
        ]
        for name in missing:
            problems.append(f"{where}: {name} is missing (or the top-level setting)")
        unusable = [
            (name, problem)
            for name, value in (*credentials.items(), ("refresh_token", refresh_token))
            if isinstance(value, str) and (problem := token_text_problem(value))
        ]
        for name, problem in unusable:
            # Which setting (the entry's own or the top-level one), never the value.
            setting = name if name == "refresh_token" or entry.get(name) else f"top-level {name}"
            problems.append(f"{where}: {setting} {problem}; copy it again")
        if missing or unusable:
            continue
        sources.append(
            (
                where,
                DataSourceSettings(
                    endpoint=endpoint,
                    refresh_token=refresh_token if isinstance(refresh_token, str) else None,
                    client_id=str(credentials["client_id"]),
                    client_secret=str(credentials["client_secret"]),
                ),
            )
        )
    return sources


def _entry_label(index: int, entry: Mapping[str, Any]) -> str:
    """``data_sources[2] (data source ds-7): `` when its URL names one, for messages."""
    try:
        data_source_id = api_shape.parse_data_source_url(str(entry.get("url", "")).strip())
    except ValueError:
        return f"data_sources[{index}]: "
    return f"data_sources[{index}] (data source {data_source_id.data_source_id}): "


def _unknown_keys(config: Mapping[str, Any], *, known: Iterable[str], where: str) -> list[str]:
    """One line per key no setting has: a typo would otherwise be ignored silently
    (a misspelt refresh_token, say, and the tap runs on another token)."""
    known = tuple(known)
    problems = []
    for key in config:
        if key in known:
            continue
        if not isinstance(key, str) or len(key) > _MAX_SHOWN_KEY_LENGTH:
            problems.append(f"{where}a key of {len(str(key))} characters is not a setting")
            continue
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"did you mean {close[0]}?" if close else "see the README's Configuration table"
        problems.append(f"{where}{key}: unknown setting; {hint}")
    return problems


def _sdk_setting_problems(config: Mapping[str, Any]) -> list[str]:
    """The SDK's own settings, checked against its schema before the SDK reads them
    (a text ``batch_config`` would otherwise crash the sync with a traceback)."""
    present = {key: config[key] for key in SDK_SETTINGS_SCHEMA["properties"] if key in config}
    if not present:
        return []
    validator = jsonschema.Draft202012Validator(_SDK_SCHEMA_REPAIRED)
    problems = []
    for error in validator.iter_errors(present):
        path = ".".join(str(part) for part in error.absolute_path)
        problems.append(f"{path}: {_schema_expectation(error)}")
    return sorted(set(problems))


def _schema_expectation(error: jsonschema.ValidationError) -> str:
    """What the schema wants, in words; never the value given (jsonschema's own
    messages quote it)."""
    expected: Any = error.validator_value
    if error.validator == "type":
        wanted = [expected] if isinstance(expected, str) else [t for t in expected if t != "null"]
        words = {
            "object": "an object",
            "boolean": "true or false",
            "integer": "a whole number",
            "string": "text",
            "array": "a list",
            "number": "a number",
        }
        return "must be " + " or ".join(words.get(t, t) for t in wanted)
    if error.validator == "enum":
        return "must be one of " + ", ".join(str(v) for v in expected if v)
    return "is not valid; see the Singer SDK's documentation of this setting"


def _repaired(schema: Any) -> Any:
    """The SDK's schemas with bare ``"null"`` subschemas (which jsonschema cannot
    read) written as ``{"type": "null"}``."""
    if schema == "null":
        return {"type": "null"}
    if isinstance(schema, dict):
        return {
            key: (
                [_repaired(branch) for branch in value]
                if key in ("anyOf", "oneOf", "allOf")
                else _repaired(value)
                if key in ("items", "additionalProperties")
                else {name: _repaired(sub) for name, sub in value.items()}
                if key == "properties"
                else value
            )
            for key, value in schema.items()
        }
    return schema


_SDK_SCHEMA_REPAIRED = _repaired(SDK_SETTINGS_SCHEMA)


def url_problem(url: str) -> str | None:
    """Why ``url`` may not be used (plain http:// only on loopback); None when it may."""
    parts = urlsplit(url.strip())
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return None
    if parts.scheme == "http":
        return "must use https:// (http:// is allowed only on 127.0.0.1, localhost or ::1)"
    return "must be an https:// URL"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _whole_number(config: Mapping[str, Any], name: str, problems: list[str]) -> int:
    """The setting, or its schema default when unset or wrong (the problem is listed)."""
    value = _optional_whole_number(config, name, problems)
    default: int = CONFIG_SCHEMA["properties"][name]["default"]
    return default if value is None else value


def _optional_whole_number(config: Mapping[str, Any], name: str, problems: list[str]) -> int | None:
    """The setting within its schema's bounds; None when unset or wrong (listed)."""
    schema = CONFIG_SCHEMA["properties"][name]
    low, high = schema["minimum"], schema.get("maximum")
    value = config.get(name)
    if value in (None, ""):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
        problems.append(f"{name}: must be a whole number {bounds}")
        return None
    return value
