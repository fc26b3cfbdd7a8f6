"""shape_page turns one reply into records of all five streams, whatever is missing.

docs/api-contract.md §6: unknown fields are kept (in ``extra``); null, missing or empty
nested objects and lists are tolerated; answers to deleted questions are kept. README,
"Streams": a column never changes type from one record to the next.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import pytest

from tap_smartforms.api_shape import Page, PageFormatError, new_field_tally, shape_page
from tap_smartforms_emulator import COLUMNS, FormSpec
from tap_smartforms_emulator.data import DataSource

FORM = {
    "id": "f1",
    "name": "Onboarding",
    "createdAt": "2026-01-15T14:23:45.000+0000",
    "updatedAt": "2026-01-20T08:00:00.000+0000",
    "questions": [
        {"id": "q1", "label": "Full name", "type": "text", "required": True},
        {"id": "q2", "label": "Kit", "type": "multiselect", "options": [{"id": "o1"}]},
    ],
}


FULLY_KNOWN_RESPONSE: dict[str, Any] = {
    "id": "r1", "formId": "f1", "status": "submitted",
    "createdAt": "2026-01-15T14:23:45.000+0000", "updatedAt": "2026-01-16T10:00:00Z",
    "submittedAt": "2026-01-15T14:30:00+02:00",
    "respondent": {"accountId": "a1", "displayName": "Ada", "emailAddress": "a@x.org"},
    "issue": {"id": "1", "key": "HR-1", "url": "u", "summary": "s", "projectKey": "HR",
              "status": "Open"},
    "createdIssues": [{"id": "2", "key": "IT-1", "url": "u2"}],
    "answers": [{"questionId": "q1", "label": "Full name", "type": "text", "value": "Ada",
                 "attachments": [{"id": "a1", "fileName": "c.pdf", "mimeType": "application/pdf",
                                  "size": 1, "downloadUrl": "https://x"}]}],
}  # fmt: skip
"""A response carrying every field the tap maps, and no other."""


def _page(*responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"form": FORM, "responses": list(responses), **extra}


def _one(response: dict[str, Any]) -> Any:
    (bundle,) = shape_page(_page(response), "ds-1").responses
    return bundle


def test_form_and_questions_come_from_the_page_form():
    page = shape_page(_page(), "ds-1")
    assert page.form is not None
    assert page.form["question_count"] == 2
    assert page.form["created_at"] == "2026-01-15T14:23:45+00:00"
    assert [(q["id"], q["position"], q["form_id"]) for q in page.questions] == [
        ("q1", 0, "f1"),
        ("q2", 1, "f1"),
    ]
    assert page.questions[1]["required"] is False
    assert page.questions[1]["options"] == [{"id": "o1", "label": None}]


def test_every_record_has_exactly_the_data_model_columns():
    response = {
        "id": "r1",
        "answers": [
            {
                "questionId": "q1",
                "value": "x",
                "attachments": [{"id": "a1", "fileName": "c.pdf", "size": 10}],
            }
        ],
    }
    page = shape_page(_page(response), "ds-1")
    (bundle,) = page.responses
    assert page.form is not None
    assert set(page.form) == set(COLUMNS["forms"])
    assert set(page.questions[0]) == set(COLUMNS["questions"])
    assert set(bundle.record) == set(COLUMNS["responses"])
    assert set(bundle.answers[0]) == set(COLUMNS["answers"])
    assert set(bundle.attachments[0]) == set(COLUMNS["attachments"])
    assert bundle.attachments[0]["size_bytes"] == 10


def test_a_record_of_a_sparse_response_still_has_every_column():
    bundle = _one({"id": "r1", "answers": [{"questionId": "q1", "attachments": [{"id": "a"}]}]})
    assert set(bundle.record) == set(COLUMNS["responses"])
    assert set(bundle.answers[0]) == set(COLUMNS["answers"])
    assert set(bundle.attachments[0]) == set(COLUMNS["attachments"])


def test_unknown_fields_are_kept_in_extra_not_as_columns():
    bundle = _one({"id": "r1", "brandNew": {"x": 1}, "answers": [{"questionId": "q1", "z": 2}]})
    assert "brandNew" not in bundle.record
    assert json.loads(bundle.record["extra"]) == {"brandNew": {"x": 1}}
    assert json.loads(bundle.answers[0]["extra"]) == {"z": 2}


def test_extra_is_null_when_every_field_is_mapped():
    page = shape_page(_page(FULLY_KNOWN_RESPONSE, total=1, offset=0, limit=500), "ds-1")
    (bundle,) = page.responses
    records = [page.form, *page.questions, bundle.record, *bundle.answers, *bundle.attachments]
    assert [record["extra"] for record in records if record] == [None] * 6


def test_unknown_fields_at_every_level_reach_extra_with_their_values():
    form = {**FORM, "owner": "u1", "questions": [{"id": "q1", "help": "h", "options": [
        {"id": "o1", "label": "A", "color": "red"}, {"id": "o2"}]}]}  # fmt: skip
    response = {
        **FULLY_KNOWN_RESPONSE,
        "channel": "portal",
        "respondent": {"accountId": "a1", "locale": "fr"},
        "issue": {"id": "1", "key": "HR-1", "priority": {"name": "High"}},
        "createdIssues": [{"id": "2", "key": "IT-1"}, {"id": "3", "labels": ["x"]}],
        "answers": [
            {
                "questionId": "q1",
                "value": "v",
                "comment": "c",
                "attachments": [{"id": "a1", "sha256": "00ff"}],
            }
        ],
    }
    page = shape_page({"form": form, "responses": [response], "cursor": "n2"}, "ds-1")
    (bundle,) = page.responses
    assert page.form is not None
    assert json.loads(page.form["extra"]) == {"owner": "u1", "_page": {"cursor": "n2"}}
    assert json.loads(page.questions[0]["extra"]) == {
        "help": "h",
        "options": [{"color": "red"}, {}],
    }
    assert json.loads(bundle.record["extra"]) == {
        "channel": "portal",
        "respondent": {"locale": "fr"},
        "issue": {"priority": {"name": "High"}},
        "createdIssues": [{}, {"labels": ["x"]}],
    }
    assert json.loads(bundle.answers[0]["extra"]) == {"comment": "c"}
    assert json.loads(bundle.attachments[0]["extra"]) == {"sha256": "00ff"}


@pytest.mark.parametrize("key", ["respondent", "issue"])
def test_a_nested_value_that_is_not_an_object_is_kept_whole_in_extra(key: str):
    bundle = _one({"id": "r1", key: "someone@example.com"})
    assert json.loads(bundle.record["extra"]) == {key: "someone@example.com"}


def test_a_response_repeated_within_a_page_is_emitted_once_and_counted():
    tally = new_field_tally()
    page = shape_page(_page({"id": "r1"}, {"id": "r2"}, {"id": "r1"}), "ds-1", tally)
    assert [bundle.record["id"] for bundle in page.responses] == ["r1", "r2"]
    assert tally.repeated_ids == 1


def test_the_tally_names_unmapped_fields_with_how_many_objects_carried_them():
    tally = new_field_tally()
    shape_page(_page({"id": "r1", "channel": "x"}, {"id": "r2"}), "ds-1", tally)
    assert ("responses.channel", 1, 2) in tally.unmapped_fields()


def test_the_tally_names_an_expected_field_absent_from_every_object():
    tally = new_field_tally()
    renamed = {k: v for k, v in FULLY_KNOWN_RESPONSE.items() if k != "updatedAt"}
    shape_page(_page({**renamed, "lastModified": "2026-01-01T00:00:00Z"}), "ds-1", tally)
    assert tally.absent_fields() == [
        ("page.limit", 1), ("page.offset", 1), ("page.total", 1), ("responses.updatedAt", 1),
    ]  # fmt: skip
    assert "responses.lastModified (1 of 1 read)" in " ".join(tally.report_lines())


def test_the_tally_reports_nothing_for_a_page_of_the_assumed_shape():
    tally = new_field_tally()
    shape_page(_page(FULLY_KNOWN_RESPONSE, total=1, offset=0, limit=500), "ds-1", tally)
    assert tally.report_lines() == []


def test_an_optional_field_absent_everywhere_is_not_drift():
    tally = new_field_tally()
    sparse = {k: v for k, v in FULLY_KNOWN_RESPONSE.items() if k not in ("issue", "submittedAt")}
    shape_page(_page(sparse, total=1, offset=0, limit=500), "ds-1", tally)
    assert tally.absent_fields() == []


def test_list_items_that_are_not_objects_are_counted_as_skipped():
    tally = new_field_tally()
    shape_page(_page({"id": "r1"}, "r2", 3), "ds-1", tally)
    assert tally.skipped_items() == [("responses", 2)]


@pytest.mark.parametrize("respondent", [None, {}, "not an object", "missing"])
def test_an_anonymous_respondent_leaves_its_columns_null(respondent: object):
    response: dict[str, Any] = {"id": "r1"}
    if respondent != "missing":
        response["respondent"] = respondent
    record = _one(response).record
    assert record["respondent_account_id"] is None
    assert record["respondent_display_name"] is None
    assert record["respondent_email"] is None


def test_a_respondent_with_only_an_account_id_keeps_it():
    record = _one({"id": "r1", "respondent": {"accountId": "5b10"}}).record
    assert record["respondent_account_id"] == "5b10"
    assert record["respondent_display_name"] is None


@pytest.mark.parametrize("issue", [None, {}, [], "HR-12"])
def test_a_missing_issue_leaves_its_columns_null(issue: object):
    record = _one({"id": "r1", "issue": issue}).record
    issue_columns = [name for name in COLUMNS["responses"] if name.startswith("issue_")]
    assert issue_columns
    assert all(record[name] is None for name in issue_columns)


@pytest.mark.parametrize("created", [None, [], "IT-7", [None, "IT-7"]])
def test_missing_created_issues_become_an_empty_list(created: object):
    assert _one({"id": "r1", "createdIssues": created}).record["created_issues"] == []


@pytest.mark.parametrize("answers", [None, [], "none", [None, 3]])
def test_a_response_without_answers_has_none_and_counts_zero(answers: object):
    bundle = _one({"id": "r1", "answers": answers})
    assert bundle.answers == []
    assert bundle.attachments == []
    assert bundle.record["answer_count"] == 0


@pytest.mark.parametrize("attachments", [None, [], "file.pdf", [None]])
def test_an_attachment_answer_without_files_has_no_attachments(attachments: object):
    bundle = _one({"id": "r1", "answers": [{"questionId": "q1", "attachments": attachments}]})
    assert len(bundle.answers) == 1
    assert bundle.attachments == []


def test_attachments_follow_their_answer_and_response():
    response = {
        "id": "r1",
        "updatedAt": "2026-02-01T10:00:00Z",
        "answers": [
            {"questionId": "q1", "attachments": [{"id": "a1"}, {"id": "a2", "size": "183422"}]}
        ],
    }
    bundle = _one(response)
    assert [(a["id"], a["response_id"], a["question_id"]) for a in bundle.attachments] == [
        ("a1", "r1", "q1"),
        ("a2", "r1", "q1"),
    ]
    assert bundle.attachments[1]["size_bytes"] == 183422
    assert bundle.attachments[0]["response_updated_at"] == "2026-02-01T10:00:00+00:00"


def test_an_answer_to_a_deleted_question_is_kept():
    bundle = _one({"id": "r1", "answers": [{"questionId": "q-gone", "label": "Old", "value": 1}]})
    assert bundle.answers[0]["question_id"] == "q-gone"
    assert bundle.answers[0]["label"] == "Old"


def test_an_answer_to_a_deleted_question_without_label_has_null_label_and_type():
    bundle = _one({"id": "r1", "answers": [{"questionId": "q-gone", "value": 1}]})
    assert (bundle.answers[0]["label"], bundle.answers[0]["type"]) == (None, None)


def test_an_answer_without_label_takes_its_question_label():
    bundle = _one({"id": "r1", "answers": [{"questionId": "q1", "value": "Ada"}]})
    assert bundle.answers[0]["label"] == "Full name"
    assert bundle.answers[0]["type"] == "text"


def test_a_question_added_after_a_response_is_simply_unanswered():
    bundle = _one({"id": "r1", "answers": [{"questionId": "q1", "value": "Ada"}]})
    assert [answer["question_id"] for answer in bundle.answers] == ["q1"]


def test_a_response_names_its_own_form_or_else_the_page_form():
    page = shape_page(_page({"id": "r1", "formId": "f-other"}, {"id": "r2"}), "ds-1")
    assert [b.record["form_id"] for b in page.responses] == ["f-other", "f1"]


@pytest.mark.parametrize("form", [None, "f1", "missing"])
def test_a_page_without_a_form_still_yields_its_responses(form: object):
    payload: dict[str, Any] = {"responses": [{"id": "r1"}]}
    if form != "missing":
        payload["form"] = form
    page = shape_page(payload, "ds-1")
    assert (page.form, page.questions) == (None, [])
    assert [b.record["id"] for b in page.responses] == ["r1"]


@pytest.mark.parametrize("questions", [None, "q1", []])
def test_a_form_without_questions_has_none_and_counts_zero(questions: object):
    page = shape_page({"form": {"id": "f1", "questions": questions}}, "ds-1")
    assert page.questions == []
    assert page.form is not None
    assert page.form["question_count"] == 0


def test_question_count_counts_only_the_questions_emitted():
    form = {"id": "f1", "questions": [{"id": "q1"}, None, "junk", {"id": "q2"}]}
    page = shape_page({"form": form}, "ds-1")
    assert page.form is not None
    assert page.form["question_count"] == len(page.questions) == 2


def test_question_positions_count_only_the_questions_emitted():
    form = {"id": "f1", "questions": [{"id": "q1"}, None, "junk", {"id": "q2"}]}
    page = shape_page({"form": form}, "ds-1")
    assert [(q["id"], q["position"]) for q in page.questions] == [("q1", 0), ("q2", 1)]


def test_paging_fields_are_read_when_present():
    page = shape_page(_page({"id": "r1"}, total=10, offset=5, limit=1), "ds-1")
    assert (page.total, page.offset, page.limit, page.received) == (10, 5, 1, 1)


def test_missing_paging_fields_are_none():
    page = shape_page({"responses": []}, "ds-1")
    assert (page.total, page.offset, page.limit, page.form) == (None, None, None, None)


@pytest.mark.parametrize(
    ("sent", "read"), [("12", 12), (12.0, 12), (None, None), (True, None), ("many", None)]
)
def test_odd_paging_fields_are_read_as_whole_numbers_or_none(sent: object, read: int | None):
    assert shape_page({"total": sent}, "ds-1").total == read


def test_received_counts_every_response_in_the_reply():
    page = shape_page({"responses": [{"id": "r1"}, None, {"id": "r2"}]}, "ds-1")
    assert page.received == 3
    assert len(page.responses) == 2


def test_a_response_updated_time_is_kept_for_the_client_side_filter():
    bundle = _one({"id": "r1", "updatedAt": "2026-02-01T10:00:00.000+0100"})
    assert bundle.updated_at is not None
    assert bundle.updated_at.isoformat() == "2026-02-01T09:00:00+00:00"
    assert bundle.record["updated_at"] == "2026-02-01T09:00:00+00:00"


@pytest.mark.parametrize("payload", [[], "text", None, {"responses": "nope"}])
def test_a_reply_that_is_not_a_page_is_refused(payload: object):
    with pytest.raises(PageFormatError):
        shape_page(payload, "ds-1")


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        ({"responses": [{"status": "submitted"}]}, "response has no 'id'"),
        ({"responses": [{"id": "r1", "answers": [{"value": 1}]}]}, "'questionId'"),
        ({"form": {"name": "no id"}}, "form has no 'id'"),
        ({"responses": [{"id": "r7", "updatedAt": "soon"}]}, "response r7: 'updatedAt'"),
    ],
)
def test_a_page_missing_what_identifies_a_record_is_refused_naming_it(
    payload: dict[str, Any], named: str
):
    with pytest.raises(PageFormatError, match=named):
        shape_page(payload, "ds-1")


def _column_types(page: Page) -> dict[str, dict[str, set[str]]]:
    """The Python types each column of each stream took, nulls aside."""
    rows: dict[str, list[dict[str, Any]]] = {
        "forms": [page.form] if page.form else [],
        "questions": page.questions,
        "responses": [b.record for b in page.responses],
        "answers": [a for b in page.responses for a in b.answers],
        "attachments": [a for b in page.responses for a in b.attachments],
    }
    seen: dict[str, dict[str, set[str]]] = {}
    for stream, records in rows.items():
        assert records, f"the sample has no {stream}"
        seen[stream] = defaultdict(set)
        for record in records:
            for column, value in record.items():
                if value is not None:
                    seen[stream][column].add(type(value).__name__)
    return seen


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_no_column_changes_type_across_the_emulators_messy_responses(seed: int):
    source = DataSource(FormSpec(responses=300, seed=seed), 0)
    payload = {"form": source.form.doc, "responses": [r.doc for r in source.responses]}
    page = shape_page(payload, source.id)
    for stream, columns in _column_types(page).items():
        changing = {column: types for column, types in columns.items() if len(types) > 1}
        assert not changing, f"{stream} columns change type: {changing}"


def test_answer_value_columns_are_text_whatever_the_value_shape():
    values = ("text", 1, 2.5, True, ["a"], {"displayName": "U"}, {"accountId": "x"}, None)
    responses = [
        {"id": f"r{index}", "answers": [{"questionId": "q1", "value": value}]}
        for index, value in enumerate(values)
    ]
    page = shape_page(_page(*responses), "ds-1")
    for column in ("value", "value_text"):
        types = {type(b.answers[0][column]) for b in page.responses}
        assert types == {str, type(None)}, column


@pytest.mark.parametrize("payload", [{}, {"responses": None}, {"responses": []}])
def test_a_page_with_no_responses_is_an_empty_page(payload: dict[str, Any]):
    page = shape_page(payload, "ds-1")
    assert (page.responses, page.received) == ([], 0)


@pytest.mark.parametrize("responses", [{}, {"id": "r1"}, 3])
def test_responses_that_are_not_a_list_are_refused_naming_them(responses: object):
    with pytest.raises(PageFormatError, match="'responses' is not a list"):
        shape_page({"responses": responses}, "ds-1")


def test_identifiers_sent_as_numbers_are_kept_as_text():
    response = {
        "id": 123,
        "formId": 9,
        "status": 5,
        "respondent": {"accountId": 77},
        "createdIssues": [{"id": 10043, "key": "IT-7"}],
        "answers": [{"questionId": 4, "value": 1, "attachments": [{"id": 8}]}],
    }
    bundle = _one(response)
    assert (bundle.record["id"], bundle.record["form_id"], bundle.record["status"]) == (
        "123",
        "9",
        "5",
    )
    assert bundle.record["respondent_account_id"] == "77"
    assert bundle.record["created_issues"][0]["id"] == "10043"
    assert (bundle.answers[0]["response_id"], bundle.answers[0]["question_id"]) == ("123", "4")
    assert bundle.attachments[0]["id"] == "8"


@pytest.mark.parametrize("size", ["1.5MB", 1.7, None, True])
def test_an_attachment_size_that_is_not_a_whole_number_is_null(size: object):
    bundle = _one(
        {"id": "r1", "answers": [{"questionId": "q1", "attachments": [{"id": "a", "size": size}]}]}
    )
    assert bundle.attachments[0]["size_bytes"] is None
