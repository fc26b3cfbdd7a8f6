"""API drift on demand: documents as a server whose shape differs from our picture.

The tap's field names are assumed (docs/api-contract.md §4). ``drift`` rewrites the
stored documents the way a real server might differ: fields renamed, fields added
at every level, so tests can check that nothing is lost (every unmapped field
reaches the ``extra`` column) and that the run reports the drift. Values are
derived from ids, so a test can predict them.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .data import JsonDict

PAGE_FIELDS: JsonDict = {"apiVersion": "2", "requestId": "req-emulated"}
"""Added to every page object."""

RENAMED: dict[str, tuple[str, str]] = {
    "responses.updatedAt": ("updatedAt", "lastModifiedAt"),
    "responses.respondent.emailAddress": ("emailAddress", "email"),
}
"""What drift renames: assumed field -> (old key, new key)."""

ADDED = (
    "forms.ownerAccountId",
    "questions.helpText",
    "responses.channel",
    "answers.comment",
    "attachments.sha256",
    "page.apiVersion",
    "page.requestId",
)
"""What drift adds, as the tap's drift report names them."""


def _renamed(doc: JsonDict, old: str, new: str) -> JsonDict:
    return {(new if key == old else key): value for key, value in doc.items()}


def drift_form(doc: JsonDict) -> JsonDict:
    form = {**doc, "ownerAccountId": f"owner-of-{doc['id']}"}
    questions = doc.get("questions")
    if isinstance(questions, list):
        form["questions"] = [
            {**question, "helpText": f"help for {question.get('id')}"}
            if isinstance(question, dict)
            else question
            for question in questions
        ]
    return form


def drift_response(doc: JsonDict) -> JsonDict:
    response = _renamed(doc, "updatedAt", "lastModifiedAt")
    response["channel"] = f"channel-{doc['id']}"
    respondent = response.get("respondent")
    if isinstance(respondent, dict):
        response["respondent"] = _renamed(respondent, "emailAddress", "email")
    answers = response.get("answers")
    if isinstance(answers, list):
        response["answers"] = [_drift_answer(answer) for answer in answers]
    return response


def _drift_answer(answer: Any) -> Any:
    if not isinstance(answer, dict):
        return answer
    drifted = {**answer, "comment": f"comment on {answer.get('questionId')}"}
    attachments = answer.get("attachments")
    if isinstance(attachments, list):
        drifted["attachments"] = [
            {**item, "sha256": hashlib.sha256(str(item.get("id")).encode()).hexdigest()}
            if isinstance(item, dict)
            else item
            for item in attachments
        ]
    return drifted
