"""answers.value is the API's value as JSON text; value_text a readable rendering."""

from __future__ import annotations

import json

import pytest

from tap_smartforms.mapping import render_value_text, shape_page


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, None),
        ("Ada Lovelace", "Ada Lovelace"),
        ("", ""),
        (42, "42"),
        (4.5, "4.5"),
        (True, "true"),
        (False, "false"),
        (["Laptop", "Phone"], "Laptop, Phone"),
        ([], ""),
        (["Laptop", None], "Laptop"),
        ({"accountId": "5b10", "displayName": "Ada L."}, "Ada L."),
        ({"b": 1, "a": "x"}, '{"a":"x","b":1}'),
        ("שלום «guillemets» 🎉", "שלום «guillemets» 🎉"),
    ],
)
def test_value_text_renders_each_shape(value: object, text: str | None):
    assert render_value_text(value) == text


def _answer(value: object) -> dict[str, object]:
    page = {
        "form": {"id": "f1", "questions": [{"id": "q1", "label": "Q", "type": "text"}]},
        "responses": [{"id": "r1", "answers": [{"questionId": "q1", "value": value}]}],
    }
    (bundle,) = shape_page(page, "ds-1").responses
    (answer,) = bundle.answers
    return answer


@pytest.mark.parametrize(
    "value", ["text", 3, 2.5, True, ["a", "b"], {"accountId": "x", "displayName": "Y"}]
)
def test_value_is_json_text_of_the_api_value(value: object):
    answer = _answer(value)
    assert isinstance(answer["value"], str)
    assert json.loads(answer["value"]) == value


def test_an_empty_answer_has_null_value_and_value_text():
    answer = _answer(None)
    assert answer["value"] is None
    assert answer["value_text"] is None


def test_unicode_is_kept_as_is_in_value():
    assert _answer("ünïcödé ✓")["value"] == '"ünïcödé ✓"'
