"""The emulator's data: a deterministic generator and the canonical in-memory model.

Each ``FormSpec`` becomes one data source: one form, its questions and its
responses, drawn from a ``random.Random`` seeded by the spec's seed and the form's
position, so the same specs always give the same data. Documents are kept exactly
as the API serves them (``doc``), beside the instants their timestamps render
(``created``, ``updated``...), which the ground truth reads. Each document's JSON
is encoded once and cached; an edit replaces the stored object, never mutates it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import Any

from . import vocab
from .timefmt import OFFSETS_MINUTES, STYLES, from_micros, render, to_micros

JsonDict = dict[str, Any]

QUESTION_TYPES: tuple[str, ...] = (
    "text", "paragraph", "number", "date", "datetime", "select", "radio",
    "multiselect", "checkbox", "user", "email", "url", "rating", "attachment",
)  # fmt: skip
"""Every question type of docs/api-contract.md §4, in the order a messy form uses them."""

CHOICE_TYPES = frozenset({"select", "radio", "multiselect"})
PLAIN_TYPES: tuple[str, ...] = (
    "text", "number", "select", "checkbox", "date", "rating", "email", "multiselect",
)  # fmt: skip

SITE_URL = "https://emulated-site.atlassian.net"
# Rewritten to the emulator's own address when served (Emulator.FILES_PATH).
ATTACHMENT_URL_PREFIX = f"{SITE_URL}/rest/api/3/attachment/content/"

_FIRST_DAY = datetime(2025, 1, 1, tzinfo=timezone.utc)
_LAST_CREATED = datetime(2026, 6, 30, tzinfo=timezone.utc)
_LAST_UPDATED = datetime(2026, 9, 30, tzinfo=timezone.utc)
_MILLISECOND = timedelta(milliseconds=1)


def _encode(doc: JsonDict) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class FormSpec:
    """What one generated form (one data source) looks like.

    ``answers_per_response`` is the number of questions of the form, each of which
    a response answers (a messy response skips some); ``None`` means 15 for a messy
    form (every question type plus one question added later) and 20 for a plain one.
    """

    responses: int = 100
    answers_per_response: int | None = None
    messy: bool = True
    seed: int = 0
    question_labels: tuple[str, ...] | None = None
    """Labels of a messy form's questions, in order (repeated when there are more
    questions than labels), in place of the vocabulary's: for forms whose labels
    are the point (duplicates, empty, every script)."""

    def __post_init__(self) -> None:
        if self.responses < 0:
            raise ValueError("responses must be >= 0")
        if self.answers_per_response is not None and self.answers_per_response < 0:
            raise ValueError("answers_per_response must be >= 0")

    @property
    def question_count(self) -> int:
        if self.answers_per_response is not None:
            return self.answers_per_response
        return len(QUESTION_TYPES) + 1 if self.messy else 20


@dataclass(frozen=True)
class StoredForm:
    """A form document as the API serves it (with its questions)."""

    doc: JsonDict
    created: datetime
    updated: datetime

    @property
    def id(self) -> str:
        return str(self.doc["id"])

    @property
    def questions(self) -> list[JsonDict]:
        questions = self.doc.get("questions")
        return questions if isinstance(questions, list) else []

    @cached_property
    def encoded(self) -> bytes:
        return _encode(self.doc)


@dataclass(frozen=True)
class StoredResponse:
    """A response document as the API serves it, and the instants it renders."""

    id: str
    doc: JsonDict
    created: datetime
    updated: datetime
    submitted: datetime | None
    created_us: int = field(init=False)
    updated_us: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "created_us", to_micros(self.created))
        object.__setattr__(self, "updated_us", to_micros(self.updated))

    @cached_property
    def encoded(self) -> bytes:
        return _encode(self.doc)


@dataclass(frozen=True)
class _QuestionMeta:
    id: str
    label: str
    type: str
    option_labels: tuple[str, ...]


_MISSING: Any = object()
"""Marks a key the document leaves out."""

DRAW: Any = object()
"""An answer value to draw (``Emulator.add_question``), as the generator would."""


def _put(doc: JsonDict, key: str, value: Any) -> None:
    if value is not _MISSING:
        doc[key] = value


class FormGenerator:
    """Draws one form and its responses, and keeps drawing for later edits."""

    def __init__(self, spec: FormSpec, index: int) -> None:
        self.spec = spec
        self.rng = random.Random(f"tap-smartforms-emulator:{spec.seed}:{index}")
        rng = self.rng
        self.data_source_id = f"ds-{index + 1:03d}-{rng.getrandbits(32):08x}"
        self.prefix = f"{rng.getrandbits(24):06x}"
        self._response_ids: set[str] = set()
        self._question_ids: set[str] = set()
        self._next_response_number = 0
        self._next_attachment_number = 0
        self._next_issue_number = 100 + rng.randrange(900)
        self.form_created = _FIRST_DAY + timedelta(seconds=rng.randrange(60 * 86_400))
        self.form = self._draw_form()
        metas = [self._meta(q) for q in self.form.questions]
        self._by_id = {m.id: m for m in metas}
        self._current = metas
        # A messy form had a question that was deleted later (older responses still
        # answer it) and got its last question late (older responses do not).
        self._deleted: _QuestionMeta | None = None
        self._added_later: str | None = None
        if spec.messy and metas:
            self._deleted = self._draw_deleted_question()
            self._by_id[self._deleted.id] = self._deleted
            if len(metas) >= 2:
                self._added_later = metas[-1].id

    # ----------------------------------------------------------------- timestamps

    def _render(self, moment: datetime) -> str:
        if not self.spec.messy:
            return render(moment, "jira", 0)
        return render(moment, self.rng.choice(STYLES), self.rng.choice(OFFSETS_MINUTES))

    def _instant(self, start: datetime, end: datetime) -> datetime:
        """A random instant in [start, end], whole seconds or (messy, half the time) millis."""
        span_ms = max(0, int((end - start) / _MILLISECOND))
        millis = self.rng.randrange(span_ms + 1)
        if not self.spec.messy or self.rng.random() < 0.5:
            millis -= millis % 1000
        return start + timedelta(milliseconds=millis)

    # ----------------------------------------------------------------- form

    def _draw_form(self) -> StoredForm:
        rng = self.rng
        messy = self.spec.messy
        created = self.form_created
        updated = created + timedelta(seconds=rng.randrange(30 * 86_400))
        questions = [self._draw_question(i) for i in range(self.spec.question_count)]
        if messy:
            name = rng.choice(vocab.FORM_NAMES)
            description = None if rng.random() < 0.4 else vocab.messy_paragraph(rng, long=False)
        else:
            name = f"Benchmark form {self.prefix}"
            description = "A regular form for benchmarks."
        doc: JsonDict = {
            "id": vocab.uuid_like(rng),
            "name": name,
            "description": description,
            "status": rng.choice(("active", "active", "closed")) if messy else "active",
            "createdAt": self._render(created),
            "updatedAt": self._render(updated),
            "questions": questions,
        }
        if messy and rng.random() < 0.5:
            doc["x-extra"] = {"theme": "dark", "layout": {"columns": 2, "sections": [1, 2]}}
        return StoredForm(doc, created, updated)

    def _draw_question(self, position: int) -> JsonDict:
        rng = self.rng
        if not self.spec.messy:
            qtype = PLAIN_TYPES[position % len(PLAIN_TYPES)]
            question: JsonDict = {
                "id": f"q{position + 1}",
                "label": f"Question {position + 1}",
                "type": qtype,
                "required": position % 2 == 0,
            }
            if qtype in CHOICE_TYPES:
                question["options"] = [
                    {"id": f"o{j + 1}", "label": f"Option {j + 1}"} for j in range(4)
                ]
            return question
        qtype = QUESTION_TYPES[position % len(QUESTION_TYPES)]
        if position == len(QUESTION_TYPES):
            qtype = "paragraph"
        label = rng.choice(vocab.QUESTION_LABELS[qtype])
        if self.spec.question_labels:
            label = self.spec.question_labels[position % len(self.spec.question_labels)]
        question = {"id": self._question_id(), "label": label, "type": qtype}
        if rng.random() < 0.7:
            question["required"] = rng.random() < 0.5
        if qtype in CHOICE_TYPES:
            labels = rng.sample(vocab.OPTION_LABELS, rng.randint(2, 6))
            question["options"] = [
                {"id": f"o{j + 1}", "label": label} for j, label in enumerate(labels)
            ]
        if rng.random() < 0.2:
            question["description"] = vocab.messy_phrase(rng)
        if rng.random() < 0.1:
            question["x-extra"] = {"validation": {"regex": "^\\d+$"}, "hidden": False}
        return question

    def _question_id(self) -> str:
        while True:
            candidate = f"q-{self.rng.getrandbits(32):08x}"
            if candidate not in self._question_ids:
                self._question_ids.add(candidate)
                return candidate

    def _draw_deleted_question(self) -> _QuestionMeta:
        qtype = self.rng.choice(("text", "select", "number"))
        options = vocab.OPTION_LABELS[:3] if qtype == "select" else ()
        return _QuestionMeta(self._question_id(), "Old question (deleted)", qtype, options)

    @staticmethod
    def _meta(question: JsonDict) -> _QuestionMeta:
        options = question.get("options") or []
        return _QuestionMeta(
            id=str(question["id"]),
            label=str(question.get("label")),
            type=str(question.get("type")),
            option_labels=tuple(str(o.get("label")) for o in options),
        )

    # ----------------------------------------------------------------- responses

    def initial_responses(self) -> list[StoredResponse]:
        """The form's responses at construction, in API order (createdAt, then id)."""
        count = self.spec.responses
        if count == 0:
            return []
        start = self.form_created + timedelta(days=1)
        if self.spec.messy:
            stamps = sorted(self._instant(start, _LAST_CREATED) for _ in range(count))
            for i in range(1, count):  # a few responses share their createdAt
                if self.rng.random() < 0.02:
                    stamps[i] = stamps[i - 1]
            ids = [self._new_response_id() for _ in range(count)]
            order = sorted(range(count), key=lambda i: (stamps[i], ids[i]))
            pairs = [(stamps[i], ids[i]) for i in order]
        else:
            step = (_LAST_CREATED - start) / count
            whole_step = max(1, int(step.total_seconds()))
            pairs = [
                (
                    start + timedelta(seconds=i * whole_step + self.rng.randrange(whole_step)),
                    self._new_response_id(),
                )
                for i in range(count)
            ]
        deleted_until = int(count * 0.4)
        added_from = int(count * 0.5)
        return [
            self.draw_response(
                response_id,
                created,
                updated=None,
                answers_deleted_question=position < deleted_until,
                answers_added_question=position >= added_from,
            )
            for position, (created, response_id) in enumerate(pairs)
        ]

    def _new_response_id(self) -> str:
        if not self.spec.messy:
            self._next_response_number += 1
            return f"r-{self.prefix}-{self._next_response_number:06d}"
        while True:
            candidate = f"r-{self.prefix}-{self.rng.getrandbits(40):010x}"
            if candidate not in self._response_ids:
                self._response_ids.add(candidate)
                return candidate

    def new_response_id(self) -> str:
        """An id no response of this data source ever had."""
        return self._new_response_id()

    def draw_response(
        self,
        response_id: str,
        created: datetime,
        updated: datetime | None,
        answers_deleted_question: bool = False,
        answers_added_question: bool = True,
    ) -> StoredResponse:
        """A new response document; ``updated`` None draws one (messy: often much later)."""
        if not self.spec.messy:
            return self._draw_plain_response(response_id, created, updated)
        rng = self.rng
        if updated is None:
            roll = rng.random()
            if roll < 0.6:
                updated = created
            elif roll < 0.9:
                updated = min(_LAST_UPDATED, self._instant(created, created + timedelta(days=3)))
            else:
                updated = self._instant(created, min(_LAST_UPDATED, created + timedelta(days=200)))
        status = rng.choices(("submitted", "draft", "locked"), weights=(70, 15, 15))[0]
        submitted: datetime | None = None
        doc: JsonDict = {"id": response_id}
        if rng.random() < 0.9:
            doc["formId"] = self.form.id
        doc["status"] = status
        doc["createdAt"] = self._render(created)
        doc["updatedAt"] = self._render(updated)
        if status == "draft":
            if rng.random() < 0.5:
                doc["submittedAt"] = None
        else:
            submitted = self._instant(created, min(updated, created + timedelta(hours=2)))
            doc["submittedAt"] = self._render(submitted)
        _put(doc, "respondent", self._messy_respondent())
        _put(doc, "issue", self._messy_issue())
        _put(doc, "createdIssues", self._messy_created_issues())
        _put(doc, "answers", self._messy_answers(answers_deleted_question, answers_added_question))
        if rng.random() < 0.1:
            doc["x-extra"] = {"channel": rng.choice(("portal", "email", "api")), "tags": []}
        return StoredResponse(response_id, doc, created, updated, submitted)

    def _draw_plain_response(
        self, response_id: str, created: datetime, updated: datetime | None
    ) -> StoredResponse:
        rng = self.rng
        if updated is None:
            updated = created
            if rng.random() < 0.3:
                updated += timedelta(seconds=rng.randrange(1, 3600))
        number = self._next_issue_number = self._next_issue_number + 1
        stamp_created = render(created, "jira", 0)
        account = f"acct-{rng.randrange(1000):04d}"
        doc: JsonDict = {
            "id": response_id,
            "formId": self.form.id,
            "status": "submitted",
            "createdAt": stamp_created,
            "updatedAt": stamp_created if updated == created else render(updated, "jira", 0),
            "submittedAt": stamp_created,
            "respondent": {
                "accountId": account,
                "displayName": f"User {account}",
                "emailAddress": f"{account}@example.com",
            },
            "issue": {
                "id": str(10_000 + number),
                "key": f"BEN-{number}",
                "url": f"{SITE_URL}/browse/BEN-{number}",
                "summary": f"Request {number}",
                "projectKey": "BEN",
                "status": "Open",
            },
            "createdIssues": [],
            "answers": [self._plain_answer(meta) for meta in self._current],
        }
        return StoredResponse(response_id, doc, created, updated, created)

    def _plain_answer(self, meta: _QuestionMeta) -> JsonDict:
        return {
            "questionId": meta.id,
            "label": meta.label,
            "type": meta.type,
            "value": self._plain_value(meta),
        }

    def _plain_value(self, meta: _QuestionMeta) -> Any:
        roll = self.rng.random()
        if roll < 0.02:
            return None
        qtype = meta.type
        pick = int(roll * 1_000_000)
        if qtype == "text":
            return f"{vocab.PLAIN_WORDS[pick % 16]} {pick % 997}"
        if qtype == "number":
            return pick % 10_000 if pick % 3 else (pick % 100_000) / 100
        if qtype == "select":
            return meta.option_labels[pick % len(meta.option_labels)]
        if qtype == "checkbox":
            return pick % 2 == 0
        if qtype == "date":
            return f"2026-{pick % 12 + 1:02d}-{pick % 28 + 1:02d}"
        if qtype == "rating":
            return pick % 5 + 1
        if qtype == "email":
            return f"user{pick % 5000}@example.com"
        if qtype == "multiselect":
            labels = meta.option_labels
            return [labels[pick % len(labels)], labels[(pick // 7 + 1) % len(labels)]]
        return f"value {pick}"

    # ----------------------------------------------------------------- messy parts

    def _messy_respondent(self) -> Any:
        rng = self.rng
        roll = rng.random()
        if roll < 0.15:
            return None
        if roll < 0.25:
            return _MISSING
        if roll < 0.35:
            return {}
        respondent: JsonDict = {
            "accountId": vocab.account_id(rng),
            "displayName": vocab.person_name(rng),
        }
        roll = rng.random()
        if roll < 0.7:
            respondent["emailAddress"] = f"user{rng.randrange(10_000)}@example.com"
        elif roll < 0.85:
            respondent["emailAddress"] = None
        if rng.random() < 0.05:
            respondent["x-extra"] = {"avatarUrls": {"48x48": "https://example.invalid/a.png"}}
        return respondent

    def _messy_issue(self) -> Any:
        rng = self.rng
        roll = rng.random()
        if roll < 0.25:
            return _MISSING
        if roll < 0.35:
            return None
        project = rng.choice(vocab.PROJECT_KEYS)
        self._next_issue_number += 1
        number = self._next_issue_number
        issue: JsonDict = {
            "id": str(10_000 + number),
            "key": f"{project}-{number}",
            "url": f"{SITE_URL}/browse/{project}-{number}",
            "summary": vocab.messy_phrase(rng),
            "projectKey": project,
            "status": rng.choice(vocab.ISSUE_STATUSES),
        }
        if rng.random() < 0.05:
            del issue["summary"]
        if rng.random() < 0.05:
            issue["status"] = None
        if rng.random() < 0.05:
            issue["x-extra"] = {"priority": {"name": "High"}}
        return issue

    def _messy_created_issues(self) -> Any:
        rng = self.rng
        roll = rng.random()
        if roll < 0.15:
            return _MISSING
        if roll < 0.2:
            return None
        created: list[JsonDict] = []
        for _ in range(rng.choice((0, 0, 1, 1, 2, 3, 4))):
            project = rng.choice(vocab.PROJECT_KEYS)
            self._next_issue_number += 1
            number = self._next_issue_number
            item: JsonDict = {
                "id": str(10_000 + number),
                "key": f"{project}-{number}",
                "url": f"{SITE_URL}/browse/{project}-{number}",
            }
            if rng.random() < 0.05:
                item["x-extra"] = "unexpected scalar"
            created.append(item)
        return created

    def _messy_answers(self, answers_deleted: bool, answers_added: bool) -> Any:
        rng = self.rng
        roll = rng.random()
        if roll < 0.05:
            return _MISSING
        if roll < 0.08:
            return None
        if roll < 0.13:
            return []
        answers: list[JsonDict] = []
        for meta in self._current:
            if meta.id == self._added_later and not answers_added:
                continue
            if rng.random() < 0.85:
                answers.append(self._messy_answer(meta, current=True))
        if answers_deleted and self._deleted is not None and rng.random() < 0.7:
            answers.insert(
                rng.randrange(len(answers) + 1), self._messy_answer(self._deleted, current=False)
            )
        return answers

    def _messy_answer(self, meta: _QuestionMeta, current: bool) -> JsonDict:
        rng = self.rng
        answer: JsonDict = {"questionId": meta.id}
        roll = rng.random()
        if roll < (0.9 if current else 0.7):
            answer["label"] = meta.label
        elif roll < 0.95:
            answer["label"] = None
        if rng.random() < (0.95 if current else 0.7):
            answer["type"] = meta.type
        self._fill_messy_value(answer, meta)
        if rng.random() < 0.05:
            answer["x-extra"] = {"editedBy": None, "history": [{"v": 1}]}
        return answer

    def _fill_messy_value(self, answer: JsonDict, meta: _QuestionMeta) -> None:
        """Set ``value`` (and for attachments ``attachments``) of an answer."""
        rng = self.rng
        qtype = meta.type
        if qtype == "attachment":
            answer["value"] = None
            roll = rng.random()
            if roll < 0.1:
                answer.pop("attachments", None)
            elif roll < 0.15:
                answer["attachments"] = None
            else:
                answer["attachments"] = [self._attachment() for _ in range(rng.randint(0, 3))]
            return
        answer["value"] = None if rng.random() < 0.08 else self._messy_value(meta)

    def _messy_value(self, meta: _QuestionMeta) -> Any:
        rng = self.rng
        qtype = meta.type
        if qtype == "text":
            return "" if rng.random() < 0.05 else vocab.messy_phrase(rng)
        if qtype == "paragraph":
            return vocab.messy_paragraph(rng, long=rng.random() < 0.03)
        if qtype == "number":
            roll = rng.random()
            if roll < 0.4:
                return rng.randint(-1000, 100_000)
            if roll < 0.8:
                return round(rng.uniform(-1000, 1000), rng.randint(1, 4))
            return rng.choice((0, 0.0, 0.1, -0.5, 2**53 - 1, 1e-7, 12.0))
        if qtype == "date":
            day = _FIRST_DAY + timedelta(days=rng.randrange(730))
            return day.date().isoformat()
        if qtype == "datetime":
            return self._render(self._instant(_FIRST_DAY, _LAST_UPDATED))
        if qtype in ("select", "radio"):
            if rng.random() < 0.05 or not meta.option_labels:
                return "Option since removed"
            return rng.choice(meta.option_labels)
        if qtype == "multiselect":
            labels = list(meta.option_labels)
            chosen: list[Any] = rng.sample(labels, rng.randint(0, len(labels)))
            if rng.random() < 0.05:
                chosen.append(None)
            return chosen
        if qtype == "checkbox":
            return rng.random() < 0.5
        if qtype == "user":
            user: JsonDict = {"accountId": vocab.account_id(rng)}
            if rng.random() < 0.95:
                user["displayName"] = vocab.person_name(rng)
            return user
        if qtype == "email":
            return rng.choice(("ada@example.com", "josé@exämple.com", "o'brien+forms@example.org"))
        if qtype == "url":
            return rng.choice(
                (
                    "https://example.com/path?q=1&x=é",
                    "http://intranet.local/wiki/Page_(draft)",
                    "https://例え.jp/パス",
                )
            )
        if qtype == "rating":
            return rng.randint(1, 5)
        return vocab.messy_phrase(rng)

    def _attachment(self) -> JsonDict:
        rng = self.rng
        self._next_attachment_number += 1
        number = self._next_attachment_number
        file_name = rng.choice(vocab.FILE_NAMES)
        attachment: JsonDict = {
            "id": f"att-{self.prefix}-{number:07d}",
            "fileName": file_name,
            "mimeType": vocab.mime_type_for(file_name),
            # The emulator serves each file (FILES_PATH); at most 50 KB keeps a test
            # that downloads them all quick. One draw as before: the rest of the data
            # stays as it was.
            "size": rng.randint(0, 25_000_000) // 500,
            "downloadUrl": f"{ATTACHMENT_URL_PREFIX}{self.prefix}{number}",
        }
        if rng.random() < 0.05:
            del attachment["mimeType"]
        if rng.random() < 0.05:
            attachment["x-extra"] = {"thumbnail": None}
        return attachment

    # ----------------------------------------------------------------- edits

    def redraw_answers(self, doc: JsonDict) -> JsonDict:
        """A copy of a response document with one to three answer values drawn anew."""
        answers = doc.get("answers")
        new_doc = dict(doc)
        if not isinstance(answers, list) or not answers:
            return new_doc
        new_answers = [dict(a) for a in answers]
        count = min(len(new_answers), self.rng.randint(1, 3))
        for index in self.rng.sample(range(len(new_answers)), count):
            answer = new_answers[index]
            meta = self._by_id.get(str(answer.get("questionId")))
            if meta is None:
                continue
            if self.spec.messy:
                self._fill_messy_value(answer, meta)
            else:
                answer["value"] = self._plain_value(meta)
        new_doc["answers"] = new_answers
        return new_doc

    def new_attachment(self) -> JsonDict:
        """A file never attached before (a new id)."""
        return self._attachment()

    def new_question(self, label: str, qtype: str) -> JsonDict:
        """A question to add to the form (a new id, docs/api-contract.md §4); responses
        drawn from now on answer it too."""
        if qtype not in QUESTION_TYPES:
            raise ValueError(f"unknown question type {qtype!r}; known: {QUESTION_TYPES}")
        if self.spec.messy:
            question_id = self._question_id()
        else:
            number = len(self._by_id) + 1
            while f"q{number}" in self._by_id:
                number += 1
            question_id = f"q{number}"
        question: JsonDict = {"id": question_id, "label": label, "type": qtype, "required": False}
        if qtype in CHOICE_TYPES:
            question["options"] = [
                {"id": f"o{j + 1}", "label": option}
                for j, option in enumerate(vocab.OPTION_LABELS[:4])
            ]
        meta = self._meta(question)
        self._by_id[meta.id] = meta
        self._current = [*self._current, meta]
        return question

    def answer(self, question_id: str, value: Any = DRAW) -> JsonDict:
        """An answer to one of the form's questions: ``value``, or one drawn for its
        type (never null; an attachment question gets one file)."""
        meta = self._by_id[question_id]
        answer: JsonDict = {"questionId": meta.id, "label": meta.label, "type": meta.type}
        if value is not DRAW:
            answer["value"] = value
        elif meta.type == "attachment":
            answer["value"] = None
            answer["attachments"] = [self._attachment()]
        else:
            answer["value"] = self._messy_value(meta)
        return answer

    def render_timestamp(self, moment: datetime) -> str:
        """Render an instant the way this form renders its timestamps."""
        return self._render(moment)


class DataSource:
    """One data source: its form and its responses in API order. Not thread-safe."""

    def __init__(self, spec: FormSpec, index: int) -> None:
        self._generator = FormGenerator(spec, index)
        self.id = self._generator.data_source_id
        self.form = self._generator.form
        self.responses: list[StoredResponse] = self._generator.initial_responses()
        stamps = [to_micros(self.form.updated)]
        stamps += [r.updated_us for r in self.responses]
        self._latest_us = max(stamps)
        self._epoch_timestamps = False

    def page(
        self, offset: int, limit: int, updated_from_us: int | None
    ) -> tuple[int, list[StoredResponse]]:
        """(total after filtering, the responses of the page)."""
        matching = self.responses
        if updated_from_us is not None:
            matching = [r for r in matching if r.updated_us >= updated_from_us]
        return len(matching), matching[offset : offset + limit]

    def index_of(self, response_id: str) -> int:
        for index, response in enumerate(self.responses):
            if response.id == response_id:
                return index
        raise KeyError(f"no response {response_id!r} in data source {self.id}")

    def _edit_instant(self, wall_clock: Callable[[], datetime]) -> datetime:
        """Now, in milliseconds, and later than every instant this data source shows."""
        now = wall_clock().astimezone(timezone.utc)
        now = now.replace(microsecond=now.microsecond - now.microsecond % 1000)
        instant = max(now, from_micros(self._latest_us) + _MILLISECOND)
        self._latest_us = to_micros(instant)
        return instant

    def insert(self, wall_clock: Callable[[], datetime]) -> StoredResponse:
        created = self._edit_instant(wall_clock)
        response = self._generator.draw_response(
            self._generator.new_response_id(), created, updated=created
        )
        response = self._in_epoch_style(response)
        self.responses.append(response)
        return response

    def update(self, response_id: str, wall_clock: Callable[[], datetime]) -> StoredResponse:
        index = self.index_of(response_id)
        old = self.responses[index]
        updated = self._edit_instant(wall_clock)
        doc = self._generator.redraw_answers(old.doc)
        return self._store_edit(index, doc, updated)

    def _store_edit(self, index: int, doc: JsonDict, updated: datetime) -> StoredResponse:
        """The response at ``index`` replaced by its edited document ``doc``, updated at
        ``updated`` and rendered in this data source's timestamp style."""
        old = self.responses[index]
        doc["updatedAt"] = self._generator.render_timestamp(updated)
        new = self._in_epoch_style(StoredResponse(old.id, doc, old.created, updated, old.submitted))
        self.responses[index] = new
        return new

    def delete(self, response_id: str) -> None:
        del self.responses[self.index_of(response_id)]

    def delete_question(self, question_id: str) -> None:
        """Remove a question from the form; answers to it stay in older responses."""
        doc = dict(self.form.doc)
        questions = self.form.questions
        kept = [q for q in questions if not (isinstance(q, dict) and q.get("id") == question_id)]
        if len(kept) == len(questions):
            raise KeyError(f"no question {question_id!r} in data source {self.id}")
        doc["questions"] = kept
        self.form = StoredForm(doc, self.form.created, self.form.updated)

    def add_question(
        self,
        label: str,
        qtype: str,
        response_id: str,
        value: Any,
        wall_clock: Callable[[], datetime],
    ) -> str:
        """Append a question to the form and answer it on one response; the form's and
        that response's updatedAt become now. Returns the question's id."""
        index = self.index_of(response_id)
        question = self._generator.new_question(label, qtype)
        updated = self._edit_instant(wall_clock)
        form = self.form
        form_doc = {**form.doc, "questions": [*form.questions, question]}
        form_doc["updatedAt"] = self._timestamp(updated)
        self.form = StoredForm(form_doc, form.created, updated)
        old = self.responses[index]
        answers = old.doc.get("answers")
        answers = [*answers] if isinstance(answers, list) else []
        answers.append(self._generator.answer(question["id"], value))
        self._store_edit(index, {**old.doc, "answers": answers}, updated)
        return str(question["id"])

    def _timestamp(self, moment: datetime) -> str | int:
        """An instant as this data source renders its timestamps now."""
        if self._epoch_timestamps:
            return _epoch_ms(moment)
        return self._generator.render_timestamp(moment)

    def replace_attachments(
        self, response_id: str, wall_clock: Callable[[], datetime]
    ) -> StoredResponse:
        """Give every answer of a response that holds files new files in place of its
        old ones, and set updatedAt to now."""
        index = self.index_of(response_id)
        old = self.responses[index]
        answers = old.doc.get("answers")
        new_answers = []
        replaced = False
        for answer in answers if isinstance(answers, list) else []:
            files = answer.get("attachments") if isinstance(answer, dict) else None
            if isinstance(files, list) and files:
                new_files = [self._generator.new_attachment() for _ in files]
                new_answers.append({**answer, "attachments": new_files})
                replaced = True
            else:
                new_answers.append(answer)
        if not replaced:
            raise ValueError(f"response {response_id!r} has no attachment to replace")
        updated = self._edit_instant(wall_clock)
        return self._store_edit(index, {**old.doc, "answers": new_answers}, updated)

    def drift(self) -> None:
        """Serve documents of a drifted shape from now on (see drift.py). Responses
        inserted or updated later are served in the assumed shape."""
        from .drift import drift_form, drift_response  # noqa: PLC0415 - drift imports data

        form = self.form
        self.form = StoredForm(drift_form(form.doc), form.created, form.updated)
        self.responses = [
            StoredResponse(r.id, drift_response(r.doc), r.created, r.updated, r.submitted)
            for r in self.responses
        ]

    def unsort(self) -> None:
        """Serve the responses out of the assumed order (createdAt, then id): each
        pair of neighbours swapped, so the first two already disagree. The order stays
        fixed, and new responses are still appended at the end."""
        swapped = list(self.responses)
        for index in range(0, len(swapped) - 1, 2):
            swapped[index], swapped[index + 1] = swapped[index + 1], swapped[index]
        self.responses = swapped

    def use_epoch_timestamps(self) -> None:
        """Render the form's and the responses' createdAt, updatedAt and submittedAt as
        epoch milliseconds (JSON numbers) from now on, responses added or edited later
        included. Answers to datetime questions keep their ISO text."""
        self._epoch_timestamps = True
        form = self.form
        doc = {
            **form.doc,
            "createdAt": _epoch_ms(form.created),
            "updatedAt": _epoch_ms(form.updated),
        }
        self.form = StoredForm(doc, form.created, form.updated)
        self.responses = [self._in_epoch_style(r) for r in self.responses]

    def _in_epoch_style(self, response: StoredResponse) -> StoredResponse:
        if not self._epoch_timestamps:
            return response
        doc = {
            **response.doc,
            "createdAt": _epoch_ms(response.created),
            "updatedAt": _epoch_ms(response.updated),
        }
        if response.submitted is not None and doc.get("submittedAt") is not None:
            doc["submittedAt"] = _epoch_ms(response.submitted)
        return StoredResponse(
            response.id, doc, response.created, response.updated, response.submitted
        )


def _epoch_ms(moment: datetime) -> int:
    return to_micros(moment) // 1000
