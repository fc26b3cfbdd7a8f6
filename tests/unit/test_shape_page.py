"""shape_page turns one reply into records of all five streams, whatever is missing."""

from __future__ import annotations

from typing import Any

import pytest

from tap_smartforms.mapping import PageFormatError, shape_page
from tests.emulator import COLUMNS

FORM = {
    "id": "f1",
    "name": "Onboarding",
    "createdAt": "2026-01-15T14:23:45.000+0000",
    "questions": [
        {"id": "q1", "label": "Full name", "type": "text", "required": True},
        {"id": "q2", "label": "Kit", "type": "multiselect", "options": [{"id": "o1"}]},
    ],
}


def _page(*responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"form": FORM, "responses": list(responses), **extra}


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


@pytest.mark.parametrize("respondent", [None, {}, "not an object"])
def test_an_anonymous_respondent_leaves_its_columns_null(respondent: object):
    response: dict[str, Any] = {"id": "r1", "respondent": respondent}
    (bundle,) = shape_page(_page(response), "ds-1").responses
    assert bundle.record["respondent_account_id"] is None
    assert bundle.record["respondent_display_name"] is None


def test_a_response_without_answers_has_none_and_counts_zero():
    (bundle,) = shape_page(_page({"id": "r1"}), "ds-1").responses
    assert bundle.answers == []
    assert bundle.record["answer_count"] == 0
    assert bundle.record["created_issues"] == []


def test_an_answer_to_a_deleted_question_is_kept():
    response = {"id": "r1", "answers": [{"questionId": "q-gone", "label": "Old", "value": 1}]}
    (bundle,) = shape_page(_page(response), "ds-1").responses
    assert bundle.answers[0]["question_id"] == "q-gone"
    assert bundle.answers[0]["label"] == "Old"


def test_an_answer_without_label_takes_its_question_label():
    response = {"id": "r1", "answers": [{"questionId": "q1", "value": "Ada"}]}
    (bundle,) = shape_page(_page(response), "ds-1").responses
    assert bundle.answers[0]["label"] == "Full name"
    assert bundle.answers[0]["type"] == "text"


def test_paging_fields_are_read_when_present_and_none_when_missing():
    page = shape_page(_page({"id": "r1"}, total=10, offset=5, limit=1), "ds-1")
    assert (page.total, page.offset, page.limit, page.received) == (10, 5, 1, 1)
    bare = shape_page({"responses": []}, "ds-1")
    assert (bare.total, bare.offset, bare.limit, bare.form) == (None, None, None, None)


def test_a_response_updated_time_is_kept_for_the_client_side_filter():
    response = {"id": "r1", "updatedAt": "2026-02-01T10:00:00.000+0100"}
    (bundle,) = shape_page(_page(response), "ds-1").responses
    assert bundle.updated_at is not None
    assert bundle.updated_at.isoformat() == "2026-02-01T09:00:00+00:00"


@pytest.mark.parametrize("payload", [[], "text", {"responses": "nope"}])
def test_a_reply_that_is_not_a_page_is_refused(payload: object):
    with pytest.raises(PageFormatError):
        shape_page(payload, "ds-1")


def test_a_column_keeps_its_type_across_odd_inputs():
    responses = [
        {"id": "r1", "answers": [{"questionId": "q1", "value": v}]}
        for v in ("text", 1, 2.5, True, ["a"], {"displayName": "U"}, None)
    ]
    for index, response in enumerate(responses):
        response["id"] = f"r{index}"
    page = shape_page(_page(*responses), "ds-1")
    values = {type(b.answers[0]["value"]) for b in page.responses}
    texts = {type(b.answers[0]["value_text"]) for b in page.responses}
    assert values <= {str, type(None)}
    assert texts <= {str, type(None)}
