"""Ground truth: the records the tap should emit, derived from the data model (README, "Streams").

This is an oracle independent of the tap: it reads the API documents the
emulator serves and the instants their timestamps render, and applies the data
model's column rules directly. Every record has exactly the data model's columns,
in its order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .data import JsonDict, StoredForm, StoredResponse
from .timefmt import to_truth

STREAMS = ("forms", "questions", "responses", "answers", "attachments")

COLUMNS: dict[str, tuple[str, ...]] = {
    "forms": (
        "id", "data_source_id", "name", "description", "status", "created_at", "updated_at",
        "question_count", "extra",
    ),
    "questions": (
        "form_id", "id", "data_source_id", "position", "label", "type", "required", "options",
        "extra",
    ),
    "responses": (
        "id", "form_id", "data_source_id", "status", "created_at", "updated_at", "submitted_at",
        "respondent_account_id", "respondent_display_name", "respondent_email", "issue_id",
        "issue_key", "issue_url", "issue_summary", "issue_project_key", "issue_status",
        "created_issues", "answer_count", "extra",
    ),
    "answers": (
        "response_id", "question_id", "form_id", "data_source_id", "label", "type", "value",
        "value_text", "response_updated_at", "extra",
    ),
    "attachments": (
        "id", "response_id", "question_id", "form_id", "data_source_id", "file_name",
        "mime_type", "size_bytes", "download_url", "response_updated_at", "extra",
        "stored_path", "sha256", "stored_size_bytes", "downloaded_at", "download_error",
    ),
}  # fmt: skip
"""The columns of each stream, as the README's "Streams" names them."""

PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "forms": ("id",),
    "questions": ("form_id", "id"),
    "responses": ("id",),
    "answers": ("response_id", "question_id"),
    "attachments": ("id",),
}

Truth = dict[str, list[JsonDict]]


@dataclass(frozen=True)
class SourceSnapshot:
    """One data source's form and responses at one moment."""

    data_source_id: str
    form: StoredForm
    responses: list[StoredResponse]


def value_json(value: Any) -> str | None:
    """The answer's value as compact JSON text; null stays null (README, "Streams")."""
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def value_text(value: Any) -> str | None:
    """The readable rendering of an answer value (README, "Streams")."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, list):
        parts = (value_text(item) for item in value if item is not None)
        return ", ".join(part for part in parts if part is not None)
    if isinstance(value, dict) and "displayName" in value:
        return value_text(value["displayName"])
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


# The fields of each object that the tap maps to columns (docs/api-contract.md §4);
# the rest of an object is its record's ``extra``.
_MAPPED: dict[str, frozenset[str]] = {
    "form": frozenset({"id", "name", "description", "status", "createdAt", "updatedAt",
                       "questions"}),
    "question": frozenset({"id", "label", "type", "required", "options"}),
    "option": frozenset({"id", "label"}),
    "response": frozenset({"id", "formId", "status", "createdAt", "updatedAt", "submittedAt",
                           "respondent", "issue", "createdIssues", "answers"}),
    "respondent": frozenset({"accountId", "displayName", "emailAddress"}),
    "issue": frozenset({"id", "key", "url", "summary", "projectKey", "status"}),
    "created_issue": frozenset({"id", "key", "url"}),
    "answer": frozenset({"questionId", "label", "type", "value", "attachments"}),
    "attachment": frozenset({"id", "fileName", "mimeType", "size", "downloadUrl"}),
}  # fmt: skip


def _rest(doc: JsonDict, kind: str) -> JsonDict:
    return {key: value for key, value in doc.items() if key not in _MAPPED[kind]}


def _extra(rest: JsonDict) -> str | None:
    """The ``extra`` column: the unmapped fields as JSON text, null when none."""
    return json.dumps(rest, ensure_ascii=False, separators=(",", ":")) if rest else None


def _nested_rest(doc: JsonDict, key: str, kind: str, rest: JsonDict) -> None:
    value = doc.get(key)
    if isinstance(value, dict):
        if unmapped := _rest(value, kind):
            rest[key] = unmapped
    elif value not in (None, ""):
        rest[key] = value


def _items_rest(items: list[JsonDict], kind: str) -> list[JsonDict] | None:
    rests = [_rest(item, kind) for item in items]
    return rests if any(rests) else None


def _object(value: Any) -> JsonDict:
    """A JSON object, or {} for null, missing or anything else."""
    return value if isinstance(value, dict) else {}


def _objects(value: Any) -> list[JsonDict]:
    """The objects of a JSON array, or [] for null, missing or anything else."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def form_records(
    source: SourceSnapshot, page_fields: JsonDict | None = None
) -> tuple[JsonDict, list[JsonDict]]:
    """The form's record and its questions' records; ``page_fields``, fields the
    page object carries beside form, responses and paging, land in the form's
    ``extra`` under ``_page``."""
    doc = source.form.doc
    ds_id = source.data_source_id
    questions = _objects(doc.get("questions"))
    form = {
        "id": doc["id"],
        "data_source_id": ds_id,
        "name": doc.get("name"),
        "description": doc.get("description"),
        "status": doc.get("status"),
        "created_at": to_truth(source.form.created),
        "updated_at": to_truth(source.form.updated),
        "question_count": len(questions),
        "extra": _extra(_rest(doc, "form") | ({"_page": page_fields} if page_fields else {})),
    }
    records = [
        {
            "form_id": doc["id"],
            "id": question["id"],
            "data_source_id": ds_id,
            "position": position,
            "label": question.get("label"),
            "type": question.get("type"),
            "required": bool(question.get("required")),
            "options": [
                {"id": option.get("id"), "label": option.get("label")}
                for option in _objects(question.get("options"))
            ],
            "extra": _question_extra(question),
        }
        for position, question in enumerate(questions)
    ]
    return form, records


def _question_extra(question: JsonDict) -> str | None:
    rest = _rest(question, "question")
    if options := _items_rest(_objects(question.get("options")), "option"):
        rest["options"] = options
    return _extra(rest)


def _response_extra(doc: JsonDict) -> str | None:
    rest = _rest(doc, "response")
    _nested_rest(doc, "respondent", "respondent", rest)
    _nested_rest(doc, "issue", "issue", rest)
    if created := _items_rest(_objects(doc.get("createdIssues")), "created_issue"):
        rest["createdIssues"] = created
    return _extra(rest)


def response_records(
    source: SourceSnapshot, response: StoredResponse
) -> tuple[JsonDict, list[JsonDict], list[JsonDict]]:
    """A response's record, its answers' records and its attachments' records."""
    doc = response.doc
    ds_id = source.data_source_id
    form_id = doc.get("formId") or source.form.id
    questions = {q.get("id"): q for q in _objects(source.form.doc.get("questions"))}
    respondent = _object(doc.get("respondent"))
    issue = _object(doc.get("issue"))
    answers = _objects(doc.get("answers"))
    updated_at = to_truth(response.updated)
    record = {
        "id": response.id,
        "form_id": form_id,
        "data_source_id": ds_id,
        "status": doc.get("status"),
        "created_at": to_truth(response.created),
        "updated_at": updated_at,
        "submitted_at": None if response.submitted is None else to_truth(response.submitted),
        "respondent_account_id": respondent.get("accountId"),
        "respondent_display_name": respondent.get("displayName"),
        "respondent_email": respondent.get("emailAddress"),
        "issue_id": issue.get("id"),
        "issue_key": issue.get("key"),
        "issue_url": issue.get("url"),
        "issue_summary": issue.get("summary"),
        "issue_project_key": issue.get("projectKey"),
        "issue_status": issue.get("status"),
        "created_issues": [
            {"id": item.get("id"), "key": item.get("key"), "url": item.get("url")}
            for item in _objects(doc.get("createdIssues"))
        ],
        "answer_count": len(answers),
        "extra": _response_extra(doc),
    }
    answer_records: list[JsonDict] = []
    attachment_records: list[JsonDict] = []
    for answer in answers:
        question = questions.get(answer.get("questionId"), {})
        label = answer.get("label")
        kind = answer.get("type")
        answer_records.append(
            {
                "response_id": response.id,
                "question_id": answer["questionId"],
                "form_id": form_id,
                "data_source_id": ds_id,
                "label": label if label is not None else question.get("label"),
                "type": kind if kind is not None else question.get("type"),
                "value": value_json(answer.get("value")),
                "value_text": value_text(answer.get("value")),
                "response_updated_at": updated_at,
                "extra": _extra(_rest(answer, "answer")),
            }
        )
        attachment_records.extend(
            {
                "id": attachment["id"],
                "response_id": response.id,
                "question_id": answer["questionId"],
                "form_id": form_id,
                "data_source_id": ds_id,
                "file_name": attachment.get("fileName"),
                "mime_type": attachment.get("mimeType"),
                "size_bytes": attachment.get("size"),
                "download_url": attachment.get("downloadUrl"),
                "response_updated_at": updated_at,
                "extra": _extra(_rest(attachment, "attachment")),
                # The downloaded file's columns: null when the tap does not download.
                **dict.fromkeys(COLUMNS["attachments"][-5:]),
            }
            for attachment in _objects(answer.get("attachments"))
        )
    return record, answer_records, attachment_records


def build_truth(
    sources: Iterable[SourceSnapshot],
    updated_since_us: int | None = None,
    page_fields: JsonDict | None = None,
) -> Truth:
    """Records per stream; responses (and theirs) only when updated at or after the bound."""
    truth: Truth = {stream: [] for stream in STREAMS}
    for source in sources:
        form, questions = form_records(source, page_fields)
        truth["forms"].append(form)
        truth["questions"].extend(questions)
        for response in source.responses:
            if updated_since_us is not None and response.updated_us < updated_since_us:
                continue
            record, answers, attachments = response_records(source, response)
            truth["responses"].append(record)
            truth["answers"].extend(answers)
            truth["attachments"].extend(attachments)
    return truth


def row_counts(truth: Truth) -> dict[str, int]:
    return {stream: len(records) for stream, records in truth.items()}
