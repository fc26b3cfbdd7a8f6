"""The one place that knows the API's JSON: field names, query parameters, page shape.

Much of the Data Source API is not published (``docs/api-contract.md`` marks it
[assumed]). Every assumed name lives here, so adapting to the real server is a
change to this file alone. Everything else in the tap works on the records this
module returns, named as the README's Streams section names them.

Tolerance (contract section 6): null, missing or empty nested objects and lists
become null columns or empty lists; answers to deleted questions are kept;
timestamps in any style become UTC RFC 3339. Nothing the API sends is dropped:
every field this module does not read (``KNOWN_FIELDS``), and a nested value of
a shape we cannot read, goes into the record's ``extra`` column as JSON text, and
a ``FieldTally`` (drift.py) counts what each object carried so the run can report
the drift once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from tap_smartforms.drift import FieldTally
from tap_smartforms.errors import quote_server_text
from tap_smartforms.timestamps import TimestampError, format_utc, normalize_timestamp

# --- Request side -------------------------------------------------------------------

DATA_SOURCE_ID_PARAM = "dataSourceId"  # [doc]
LIMIT_PARAM = "limit"  # [doc]
OFFSET_PARAM = "offset"  # [assumed]
UPDATED_FROM_PARAM = "updatedFrom"  # [assumed]
MAX_PAGE_SIZE = 500  # [doc]


@dataclass(frozen=True)
class Endpoint:
    """A data source URL split into what requests need: the URL and its fixed query."""

    url: str
    fixed_params: tuple[tuple[str, str], ...]
    data_source_id: str


def parse_data_source_url(url: str) -> Endpoint:
    """Split the URL copied from the Data Source modal. Raises ValueError if unusable."""
    parts = urlsplit(url)
    params = tuple(parse_qsl(parts.query, keep_blank_values=True))
    ids = [value for name, value in params if name == DATA_SOURCE_ID_PARAM]
    if not ids or not ids[0].strip():
        raise ValueError(f"has no {DATA_SOURCE_ID_PARAM}= query parameter")
    return Endpoint(
        url=urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")),
        fixed_params=params,
        data_source_id=ids[0].strip(),
    )


def page_params(
    endpoint: Endpoint, *, offset: int, limit: int, updated_from: datetime | None
) -> list[tuple[str, str]]:
    """Query parameters for one page of responses."""
    params = [(name, value) for name, value in endpoint.fixed_params if name != LIMIT_PARAM]
    params += [(LIMIT_PARAM, str(limit)), (OFFSET_PARAM, str(offset))]
    if updated_from is not None:
        params.append((UPDATED_FROM_PARAM, format_utc(updated_from)))
    return params


# --- Error bodies -------------------------------------------------------------------


def error_text(body: object) -> str | None:
    """The human part of an error body: {"error", "message"} [assumed], the token
    endpoint's {"error", "error_description"} [atlassian], or the gateway's
    {"code", "message"}. Quoted (``errors.quote_server_text``): ready for a log line."""
    if not isinstance(body, Mapping):
        return None
    code = body.get("error")
    message = body.get("message") or body.get("error_description")
    parts = [str(part) for part in (code, message) if part not in (None, "")]
    return quote_server_text(": ".join(parts)) if parts else None


def error_code(body: object) -> str | None:
    """The machine-readable error code of an error body, e.g. ``invalid_grant``."""
    if isinstance(body, Mapping) and isinstance(body.get("error"), str):
        return str(body["error"])
    return None


# --- Response side: the fields read from each kind of JSON object -----------------

KNOWN_FIELDS: dict[str, tuple[str, ...]] = {
    "page": ("form", "responses", "total", "offset", "limit"),
    "forms": ("id", "name", "description", "status", "createdAt", "updatedAt", "questions"),
    "questions": ("id", "label", "type", "required", "options"),
    "questions.options": ("id", "label"),
    "responses": (
        "id", "formId", "status", "createdAt", "updatedAt", "submittedAt", "respondent",
        "issue", "createdIssues", "answers",
    ),
    "responses.respondent": ("accountId", "displayName", "emailAddress"),
    "responses.issue": ("id", "key", "url", "summary", "projectKey", "status"),
    "responses.createdIssues": ("id", "key", "url"),
    "answers": ("questionId", "label", "type", "value", "attachments"),
    "attachments": ("id", "fileName", "mimeType", "size", "downloadUrl"),
}  # fmt: skip
"""Every field name below is [assumed] but ``dataSourceId`` and ``limit`` (contract §4);
anything else an object carries is kept in ``extra``."""

EXPECTED_FIELDS: dict[str, tuple[str, ...]] = {
    "page": ("form", "responses", "total", "offset", "limit"),
    "forms": ("id", "name", "createdAt", "updatedAt", "questions"),
    "questions": ("id", "label", "type"),
    "responses": ("id", "createdAt", "updatedAt", "answers"),
    "responses.respondent": ("accountId",),
    "responses.issue": ("id", "key"),
    "responses.createdIssues": ("id", "key"),
    "answers": ("questionId", "value"),
    "attachments": ("id", "fileName", "downloadUrl"),
}
"""The fields of ``KNOWN_FIELDS`` every object of its kind should carry: one absent
from all of them is reported as drift (the others are optional)."""

_KNOWN = {kind: frozenset(names) for kind, names in KNOWN_FIELDS.items()}


def new_field_tally() -> FieldTally:
    """A tally of the fields one data source's replies carry (see drift.py)."""
    return FieldTally(KNOWN_FIELDS, EXPECTED_FIELDS)


ATTACHMENT_FILE_FIELDS = (
    "stored_path", "sha256", "stored_size_bytes", "downloaded_at", "download_error",
)  # fmt: skip
"""The ``attachments`` columns the tap fills itself, from the downloaded file."""

# --- Pages --------------------------------------------------------------------------

Record = dict[str, Any]


class PageFormatError(ValueError):
    """A 200 reply whose JSON is not a page we can read."""


@dataclass
class ResponseBundle:
    """One response's record with the answers and attachments it carries."""

    record: Record
    answers: list[Record]
    attachments: list[Record]
    updated_at: datetime | None


@dataclass
class Page:
    """One page of the API, already shaped into our records."""

    form: Record | None
    questions: list[Record]
    responses: list[ResponseBundle]
    received: int  # responses in the reply, before any client-side filtering
    total: int | None = None
    offset: int | None = None
    limit: int | None = None


def shape_page(payload: object, data_source_id: str, tally: FieldTally | None = None) -> Page:
    """Turn one decoded reply of the data endpoint into records of all five streams.

    ``tally`` (one per data source) learns which fields each object carried.
    """
    if not isinstance(payload, Mapping):
        raise PageFormatError("the reply is not a JSON object")
    tally = tally or new_field_tally()
    raw_responses = payload.get("responses")
    if raw_responses is None:
        raw_responses = []
    if not isinstance(raw_responses, list):
        raise PageFormatError("'responses' is not a list")
    tally.saw("page", payload)

    raw_form = payload.get("form")
    form = None
    questions: list[Record] = []
    if isinstance(raw_form, Mapping):
        form = _form_record(raw_form, data_source_id, tally)
        questions = [
            _question_record(raw, position, form["id"], data_source_id, tally)
            for position, raw in enumerate(_objects(raw_form.get("questions"), "questions", tally))
        ]
        # Fields of the page itself (a cursor, a request id) belong to no record;
        # the form, written once per data source, keeps them.
        if page_extra := _unmapped(payload, "page"):
            form["extra"] = _with_extra(form["extra"], "_page", page_extra)
    form_id = form["id"] if form else None
    questions_by_id = {question["id"]: question for question in questions}

    bundles: list[ResponseBundle] = []
    seen_ids: set[str] = set()
    for raw in _objects(raw_responses, "responses", tally):
        bundle = _response_bundle(raw, form_id, questions_by_id, data_source_id, tally)
        if bundle.record["id"] in seen_ids:
            tally.repeated_ids += 1  # the server repeated it; emit it once
            continue
        seen_ids.add(bundle.record["id"])
        bundles.append(bundle)
    return Page(
        form=form,
        questions=questions,
        responses=bundles,
        received=len(raw_responses),
        total=_optional_int(payload.get("total")),
        offset=_optional_int(payload.get("offset")),
        limit=_optional_int(payload.get("limit")),
    )


def _form_record(raw: Mapping[str, Any], data_source_id: str, tally: FieldTally) -> Record:
    tally.saw("forms", raw)
    questions = _objects(raw.get("questions"))
    return {
        "id": _required_id(raw, "form"),
        "data_source_id": data_source_id,
        "name": _optional_str(raw.get("name")),
        "description": _optional_str(raw.get("description")),
        "status": _optional_str(raw.get("status")),
        "created_at": _timestamp(raw, "createdAt", "form"),
        "updated_at": _timestamp(raw, "updatedAt", "form"),
        "question_count": len(questions),
        "extra": _extra_json(_unmapped(raw, "forms")),
    }


def _question_record(
    raw: Mapping[str, Any],
    position: int,
    form_id: str | None,
    data_source_id: str,
    tally: FieldTally,
) -> Record:
    tally.saw("questions", raw)
    options = _objects(raw.get("options"), "questions.options", tally)
    extra = _unmapped(raw, "questions")
    if options_extra := _items_extra(options, "questions.options", tally):
        extra["options"] = options_extra
    return {
        "form_id": form_id,
        "id": _required_id(raw, "question"),
        "data_source_id": data_source_id,
        "position": position,
        "label": _optional_str(raw.get("label")),
        "type": _optional_str(raw.get("type")),
        "required": bool(raw.get("required") or False),
        "options": [
            {"id": _optional_str(option.get("id")), "label": _optional_str(option.get("label"))}
            for option in options
        ],
        "extra": _extra_json(extra),
    }


def _response_bundle(
    raw: Mapping[str, Any],
    form_id: str | None,
    questions_by_id: Mapping[str, Record],
    data_source_id: str,
    tally: FieldTally,
) -> ResponseBundle:
    tally.saw("responses", raw)
    response_id = _required_id(raw, "response")
    what = f"response {response_id}"
    response_form_id = _optional_str(raw.get("formId")) or form_id
    updated_at = _timestamp(raw, "updatedAt", what)
    extra = _unmapped(raw, "responses")
    respondent = _nested(raw, "respondent", "responses.respondent", extra, tally)
    issue = _nested(raw, "issue", "responses.issue", extra, tally)
    created_issues = _objects(raw.get("createdIssues"), "responses.createdIssues", tally)
    if created_extra := _items_extra(created_issues, "responses.createdIssues", tally):
        extra["createdIssues"] = created_extra
    raw_answers = _objects(raw.get("answers"), "answers", tally)

    record: Record = {
        "id": response_id,
        "form_id": response_form_id,
        "data_source_id": data_source_id,
        "status": _optional_str(raw.get("status")),
        "created_at": _timestamp(raw, "createdAt", what),
        "updated_at": updated_at,
        "submitted_at": _timestamp(raw, "submittedAt", what),
        "respondent_account_id": _optional_str(respondent.get("accountId")),
        "respondent_display_name": _optional_str(respondent.get("displayName")),
        "respondent_email": _optional_str(respondent.get("emailAddress")),
        "issue_id": _optional_str(issue.get("id")),
        "issue_key": _optional_str(issue.get("key")),
        "issue_url": _optional_str(issue.get("url")),
        "issue_summary": _optional_str(issue.get("summary")),
        "issue_project_key": _optional_str(issue.get("projectKey")),
        "issue_status": _optional_str(issue.get("status")),
        "created_issues": [
            {
                "id": _optional_str(created.get("id")),
                "key": _optional_str(created.get("key")),
                "url": _optional_str(created.get("url")),
            }
            for created in created_issues
        ],
        "answer_count": len(raw_answers),
        "extra": _extra_json(extra),
    }

    answers: list[Record] = []
    attachments: list[Record] = []
    for raw_answer in raw_answers:
        tally.saw("answers", raw_answer)
        question_id = _required_id(raw_answer, f"answer in {what}", key="questionId")
        question = questions_by_id.get(question_id, {})
        value = raw_answer.get("value")
        answers.append(
            {
                "response_id": response_id,
                "question_id": question_id,
                "form_id": response_form_id,
                "data_source_id": data_source_id,
                "label": _optional_str(raw_answer.get("label")) or question.get("label"),
                "type": _optional_str(raw_answer.get("type")) or question.get("type"),
                "value": None if value is None else _compact_json(value),
                "value_text": render_value_text(value),
                "response_updated_at": updated_at,
                "extra": _extra_json(_unmapped(raw_answer, "answers")),
            }
        )
        for raw_attachment in _objects(raw_answer.get("attachments"), "attachments", tally):
            tally.saw("attachments", raw_attachment)
            attachments.append(
                {
                    "id": _required_id(raw_attachment, f"attachment in {what}"),
                    "response_id": response_id,
                    "question_id": question_id,
                    "form_id": response_form_id,
                    "data_source_id": data_source_id,
                    "file_name": _optional_str(raw_attachment.get("fileName")),
                    "mime_type": _optional_str(raw_attachment.get("mimeType")),
                    "size_bytes": _optional_int(raw_attachment.get("size")),
                    "download_url": _optional_str(raw_attachment.get("downloadUrl")),
                    "response_updated_at": updated_at,
                    "extra": _extra_json(_unmapped(raw_attachment, "attachments")),
                    # What attachments.py did with the file: null until it runs, and
                    # when attachments_path is not set.
                    **dict.fromkeys(ATTACHMENT_FILE_FIELDS),
                }
            )

    updated_moment = None if updated_at is None else datetime.fromisoformat(updated_at)
    return ResponseBundle(record, answers, attachments, updated_moment)


# --- Values -------------------------------------------------------------------------


def render_value_text(value: object) -> str | None:
    """A readable rendering of an answer's value (README, Streams: ``value_text``).

    Lists are joined with ", ", users shown by display name, booleans as true/false,
    numbers as JSON writes them; null stays null.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, list):
        rendered = (render_value_text(item) for item in value if item is not None)
        return ", ".join(text for text in rendered if text is not None)
    if isinstance(value, Mapping):
        display_name = value.get("displayName")
        if isinstance(display_name, str):
            return display_name
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return str(value)


def _compact_json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# --- What we do not read: the extra column ------------------------------------------


def _unmapped(raw: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """The fields of ``raw`` that this module does not read."""
    known = _KNOWN[kind]
    if raw.keys() <= known:  # the usual case, checked without building a set
        return {}
    return {key: value for key, value in raw.items() if key not in known}


def _nested(
    raw: Mapping[str, Any], key: str, kind: str, extra: dict[str, Any], tally: FieldTally
) -> Mapping[str, Any]:
    """A nested object we flatten into columns; its unknown fields, or the whole value
    when it is not an object, go under ``key`` in ``extra``."""
    value = raw.get(key)
    if isinstance(value, Mapping):
        tally.saw(kind, value)
        if unknown := _unmapped(value, kind):
            extra[key] = unknown
        return value
    if value is not None and value != "":
        extra[key] = value
    return {}


def _items_extra(
    items: list[Mapping[str, Any]], kind: str, tally: FieldTally
) -> list[dict[str, Any]] | None:
    """Per item of a list we keep as an array column, its unknown fields (aligned by
    position), or None when no item has any."""
    unknown = []
    for item in items:
        tally.saw(kind, item)
        unknown.append(_unmapped(item, kind))
    return unknown if any(unknown) else None


def _with_extra(extra_json: str | None, key: str, value: object) -> str:
    extra = json.loads(extra_json) if extra_json else {}
    extra[key] = value
    return _compact_json(extra)


def _extra_json(extra: Mapping[str, Any]) -> str | None:
    return _compact_json(extra) if extra else None


# --- Small readers ------------------------------------------------------------------


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _objects(
    value: object, kind: str | None = None, tally: FieldTally | None = None
) -> list[Mapping[str, Any]]:
    """The JSON objects of a list; anything else in it is not a record (and is counted)."""
    if not value or not isinstance(value, list):  # most answers carry no attachments
        return []
    objects = [item for item in value if isinstance(item, Mapping)]
    if tally is not None and kind is not None and len(objects) < len(value):
        for _ in range(len(value) - len(objects)):
            tally.saw_not_an_object(kind)
    return objects


def _optional_str(value: object) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _optional_int(value: object) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _required_id(raw: Mapping[str, Any], what: str, key: str = "id") -> str:
    value = raw.get(key)
    if value is None or value == "":
        raise PageFormatError(f"a {what} has no '{key}'")
    return str(value)


def _timestamp(raw: Mapping[str, Any], key: str, what: str) -> str | None:
    try:
        return normalize_timestamp(raw.get(key))
    except TimestampError as error:
        raise PageFormatError(f"{what}: '{key}' is {error}") from None


# --- Raw replies, as tap-smartforms doctor inspects them ----------------------------

TOTAL_FIELD = "total"  # [assumed], like the page's "offset" and "limit"
FORM_TIMESTAMP_FIELDS = ("createdAt", "updatedAt")
RESPONSE_TIMESTAMP_FIELDS = ("createdAt", "updatedAt", "submittedAt")


def raw_timestamps(payload: object) -> list[object]:
    """The form's and the responses' timestamps in a decoded reply, exactly as sent
    (before ``normalize_timestamp``), leaving out null and empty ones: which styles
    the server uses is what the doctor reports."""
    if not isinstance(payload, Mapping):
        return []
    found: list[object] = []
    form = payload.get("form")
    if isinstance(form, Mapping):
        found += [form.get(name) for name in FORM_TIMESTAMP_FIELDS]
    for response in _objects(payload.get("responses")):
        found += [response.get(name) for name in RESPONSE_TIMESTAMP_FIELDS]
    return [value for value in found if value is not None and value != ""]
