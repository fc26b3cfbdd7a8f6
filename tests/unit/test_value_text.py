"""answers.value is the API's value as JSON text; value_text a readable rendering.

README, "Streams": lists joined with ", ", users by display name, null stays null.
"""

from __future__ import annotations

import json

import pytest

from tap_smartforms.api_shape import render_value_text, shape_page
from tap_smartforms_emulator import QUESTION_TYPES

LONG_PARAGRAPH = "Ünïcödé ✓ «guillemets» שלום 日本語 🎉\n\tline two; " * 2000

# One value of each question type, shaped as docs/api-contract.md §4 says the type sends it.
VALUE_BY_TYPE: dict[str, tuple[object, str]] = {
    "text": ("Ada Lovelace", "Ada Lovelace"),
    "paragraph": ("First line.\nSecond line.", "First line.\nSecond line."),
    "number": (-12.75, "-12.75"),
    "date": ("2026-02-01", "2026-02-01"),
    "datetime": ("2026-02-01T09:00:00.000+0100", "2026-02-01T09:00:00.000+0100"),
    "select": ("Laptop", "Laptop"),
    "radio": ("Yes", "Yes"),
    "multiselect": (["Laptop", "Phone"], "Laptop, Phone"),
    "checkbox": (True, "true"),
    "user": ({"accountId": "5b10ac8d", "displayName": "Ada L."}, "Ada L."),
    "email": ("josé@exämple.com", "josé@exämple.com"),
    "url": ("https://例え.jp/パス?q=1&x=é", "https://例え.jp/パス?q=1&x=é"),
    "rating": (4, "4"),
    "attachment": (None, None),
}


def test_every_question_type_of_the_contract_has_a_case():
    assert set(VALUE_BY_TYPE) == set(QUESTION_TYPES)


@pytest.mark.parametrize("question_type", sorted(VALUE_BY_TYPE))
def test_value_text_renders_each_question_type(question_type: str):
    value, text = VALUE_BY_TYPE[question_type]
    assert render_value_text(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("", ""),
        (0, "0"),
        (2**53 - 1, "9007199254740991"),
        (0.1, "0.1"),
        (12.0, "12.0"),
        (False, "false"),
        ([], ""),
        (["Laptop", None], "Laptop"),
        ([None], ""),
        ([1, 2.5, True], "1, 2.5, true"),
        (
            [{"accountId": "a", "displayName": "Ada"}, {"accountId": "b", "displayName": "Bo"}],
            "Ada, Bo",
        ),
    ],
)
def test_value_text_renders_edge_values_of_each_shape(value: object, text: str):
    assert render_value_text(value) == text


def test_a_null_value_stays_null():
    assert render_value_text(None) is None


def test_a_user_without_display_name_is_shown_as_compact_sorted_json():
    assert render_value_text({"displayName": None, "accountId": "5b10"}) == (
        '{"accountId":"5b10","displayName":null}'
    )


def test_any_other_object_is_shown_as_compact_sorted_json_keeping_unicode():
    assert render_value_text({"b": 1, "a": "é"}) == '{"a":"é","b":1}'


def test_a_long_unicode_paragraph_is_kept_whole():
    assert render_value_text(LONG_PARAGRAPH) == LONG_PARAGRAPH


def _answer(value: object) -> dict[str, object]:
    page = {
        "form": {"id": "f1", "questions": [{"id": "q1", "label": "Q", "type": "text"}]},
        "responses": [{"id": "r1", "answers": [{"questionId": "q1", "value": value}]}],
    }
    (bundle,) = shape_page(page, "ds-1").responses
    (answer,) = bundle.answers
    return answer


@pytest.mark.parametrize("question_type", sorted(VALUE_BY_TYPE))
def test_an_answer_carries_both_value_and_value_text(question_type: str):
    value, text = VALUE_BY_TYPE[question_type]
    answer = _answer(value)
    assert answer["value_text"] == text
    if value is None:
        assert answer["value"] is None
    else:
        assert isinstance(answer["value"], str)
        assert json.loads(answer["value"]) == value


@pytest.mark.parametrize("value", ["", 0, False, [], {}])
def test_an_empty_but_present_value_is_not_null(value: object):
    assert _answer(value)["value"] == json.dumps(value)


def test_value_is_compact_json_keeping_unicode_as_is():
    assert _answer(["ünïcödé ✓", 1])["value"] == '["ünïcödé ✓",1]'


def test_a_long_unicode_value_round_trips_through_value():
    answer = _answer(LONG_PARAGRAPH)
    assert isinstance(answer["value"], str)
    assert json.loads(answer["value"]) == LONG_PARAGRAPH
    assert answer["value_text"] == LONG_PARAGRAPH
