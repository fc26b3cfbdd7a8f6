"""The emulator's data: edits during a sync, and the ground truth against what the
API serves.

Everything goes over real HTTP; time is moved with ManualClock instead of slept.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

import pytest
import requests

from tap_smartforms_emulator import (
    COLUMNS,
    PRIMARY_KEYS,
    QUESTION_TYPES,
    STREAMS,
    Emulator,
    FormSpec,
    ManualWallClock,
    value_text,
)
from tap_smartforms_emulator.timefmt import STYLES, parse_instant, render
from tests.emulator_http import (
    UTC_ISO,
    EmulatorFactory,
    access_token,
    get_page,
    page_ids,
)

# --------------------------------------------------------------------------- edits


def test_insert_update_delete(emulator: EmulatorFactory, session: requests.Session) -> None:
    wall = ManualWallClock(datetime(2026, 11, 1, tzinfo=timezone.utc))
    emu = emulator(wall_clock=wall)
    (ds,) = emu.data_source_ids
    before = emu.truth()
    ids = emu.response_ids(ds)

    new_id = emu.insert_response(ds)
    assert emu.response_ids(ds) == [*ids, new_id]
    inserted = emu.truth()["responses"][-1]
    assert inserted["id"] == new_id
    assert inserted["created_at"] == inserted["updated_at"] == "2026-11-01T00:00:00+00:00"

    target = ids[3]
    emu.update_response(ds, target)  # same wall time: still strictly later
    assert emu.response_ids(ds) == [*ids, new_id]
    updated = next(r for r in emu.truth()["responses"] if r["id"] == target)
    assert updated["updated_at"] == "2026-11-01T00:00:00.001000+00:00"
    old = next(r for r in before["responses"] if r["id"] == target)
    assert updated["created_at"] == old["created_at"]

    emu.delete_response(ds, ids[0])
    assert emu.response_ids(ds) == [*ids[1:], new_id]
    since = emu.truth(updated_since=datetime(2026, 11, 1, tzinfo=timezone.utc))
    assert [r["id"] for r in since["responses"]] == [target, new_id]
    assert since["forms"] == before["forms"]
    with pytest.raises(KeyError):
        emu.update_response(ds, ids[0])


def test_update_changes_answer_values(emulator: EmulatorFactory) -> None:
    emu = emulator(forms=[FormSpec(responses=30, messy=False, seed=2)])
    (ds,) = emu.data_source_ids
    target = emu.response_ids(ds)[7]

    def answers() -> list[Any]:
        return [a["value"] for a in emu.truth()["answers"] if a["response_id"] == target]

    before = answers()
    for _ in range(3):
        emu.update_response(ds, target)
    assert answers() != before


def test_added_question_is_served_last_in_the_form_with_a_new_id(
    emulator: EmulatorFactory, session: requests.Session
) -> None:
    emu = emulator(forms=[FormSpec(responses=20, seed=5)])
    (ds,) = emu.data_source_ids
    token = access_token(session, emu, ds)
    before = get_page(session, emu, ds, token).json()["form"]

    added = emu.add_question(ds, "Laptop budget (EUR)", "number")

    form = get_page(session, emu, ds, token).json()["form"]
    assert form["questions"][:-1] == before["questions"]
    assert form["questions"][-1] == {
        "id": added.question_id,
        "label": "Laptop budget (EUR)",
        "type": "number",
        "required": False,
    }
    assert added.question_id not in {q["id"] for q in before["questions"]}
    truth = emu.truth()
    assert truth["forms"][0]["question_count"] == len(before["questions"]) + 1
    (question,) = [q for q in truth["questions"] if q["id"] == added.question_id]
    assert question["position"] == len(before["questions"])


def test_added_question_is_answered_on_one_response_which_an_incremental_read_serves(
    emulator: EmulatorFactory, session: requests.Session
) -> None:
    wall = ManualWallClock(datetime(2026, 11, 1, tzinfo=timezone.utc))
    emu = emulator(forms=[FormSpec(responses=20, seed=5)], wall_clock=wall)
    (ds,) = emu.data_source_ids
    target = emu.response_ids(ds)[4]

    added = emu.add_question(ds, "Start date", "date", response_id=target, value="2026-12-01")

    assert added.response_id == target
    truth = emu.truth()
    answers = [a for a in truth["answers"] if a["question_id"] == added.question_id]
    assert [(a["response_id"], a["type"], a["value_text"]) for a in answers] == [
        (target, "date", "2026-12-01")
    ]
    response = next(r for r in truth["responses"] if r["id"] == target)
    assert response["updated_at"] == "2026-11-01T00:00:00+00:00"
    assert truth["forms"][0]["updated_at"] == "2026-11-01T00:00:00+00:00"
    token = access_token(session, emu, ds)
    since = get_page(session, emu, ds, token, updatedFrom="2026-11-01T00:00:00Z")
    assert page_ids(since) == [target]
    served = since.json()["responses"][0]["answers"]
    assert served[-1] == {
        "questionId": added.question_id,
        "label": "Start date",
        "type": "date",
        "value": "2026-12-01",
    }


def test_added_question_defaults_to_the_first_response_and_a_drawn_value_of_its_type(
    emulator: EmulatorFactory,
) -> None:
    emu = emulator(forms=[FormSpec(responses=10, seed=6)])
    (ds,) = emu.data_source_ids

    rating = emu.add_question(ds, "How was it?", "rating")
    files = emu.add_question(ds, "Receipt", "attachment")

    assert rating.response_id == files.response_id == emu.response_ids(ds)[0]
    truth = emu.truth()
    (answer,) = [a for a in truth["answers"] if a["question_id"] == rating.question_id]
    assert json.loads(answer["value"]) in range(1, 6)
    attached = [a for a in truth["attachments"] if a["question_id"] == files.question_id]
    assert [a["response_id"] for a in attached] == [files.response_id]


def test_responses_inserted_after_a_question_was_added_answer_it(
    emulator: EmulatorFactory,
) -> None:
    emu = emulator(forms=[FormSpec(responses=5, answers_per_response=4, messy=False, seed=7)])
    (ds,) = emu.data_source_ids

    added = emu.add_question(ds, "Question 5", "text")
    new_id = emu.insert_response(ds)

    answered = {a["response_id"] for a in emu.truth()["answers"] if a["question_id"] == "q5"}
    assert added.question_id == "q5"
    assert answered == {added.response_id, new_id}


def test_add_question_refuses_an_unknown_type_or_response_and_changes_nothing(
    emulator: EmulatorFactory,
) -> None:
    emu = emulator(forms=[FormSpec(responses=5, seed=8)])
    (ds,) = emu.data_source_ids
    before = emu.truth()

    with pytest.raises(ValueError, match="unknown question type"):
        emu.add_question(ds, "Colour", "colour-picker")
    with pytest.raises(KeyError):
        emu.add_question(ds, "Colour", "text", response_id="r-no-such-response")

    assert emu.truth() == before


def test_callback_sees_each_request_and_may_edit_mid_sync(
    emulator: EmulatorFactory, session: requests.Session
) -> None:
    emu = emulator(forms=[FormSpec(responses=30, seed=4)])
    (ds,) = emu.data_source_ids
    ids = emu.response_ids(ds)
    calls: list[tuple[str, int, int, int]] = []

    def on_request(ds_id: str, offset: int, limit: int, number: int) -> None:
        calls.append((ds_id, offset, limit, number))
        if number == 2:
            emu.delete_response(ds_id, ids[0])

    emu.on_data_request(on_request)
    token = access_token(session, emu, ds)
    first = page_ids(get_page(session, emu, ds, token, offset=0, limit=10))
    second = page_ids(get_page(session, emu, ds, token, offset=10, limit=10))
    assert calls == [(ds, 0, 10, 1), (ds, 10, 10, 2)]
    assert first == ids[:10]
    assert second == ids[11:21]  # everything moved one place forward
    assert emu.stats.callback_errors == []


# --------------------------------------------------------------------------- truth


def test_truth_records_have_exactly_the_data_model_columns(emulator: EmulatorFactory) -> None:
    emu = emulator(forms=[FormSpec(responses=150, seed=s) for s in (1, 2, 3)])
    truth = emu.truth()
    assert list(truth) == list(STREAMS)
    for stream, records in truth.items():
        assert records, stream
        keys = [tuple(record[k] for k in PRIMARY_KEYS[stream]) for record in records]
        assert len(set(keys)) == len(keys), f"duplicate primary key in {stream}"
        for record in records:
            assert tuple(record) == COLUMNS[stream]
            assert isinstance(record["data_source_id"], str)
    for record in truth["forms"]:
        assert isinstance(record["question_count"], int)
        assert UTC_ISO.fullmatch(record["created_at"])
    for record in truth["questions"]:
        assert isinstance(record["required"], bool)
        assert isinstance(record["position"], int)
        assert all(set(o) == {"id", "label"} for o in record["options"])
    for record in truth["responses"]:
        for column in ("created_at", "updated_at"):
            assert UTC_ISO.fullmatch(record[column])
        assert record["submitted_at"] is None or UTC_ISO.fullmatch(record["submitted_at"])
        assert record["updated_at"] >= record["created_at"]
        assert all(set(i) == {"id", "key", "url"} for i in record["created_issues"])
        assert isinstance(record["answer_count"], int)
    for record in truth["attachments"]:
        assert isinstance(record["size_bytes"], int)


def test_truth_matches_what_the_api_serves(
    emulator: EmulatorFactory, session: requests.Session
) -> None:
    emu = emulator(forms=[FormSpec(responses=80, seed=6)], rate_limit_per_minute=None)
    (ds,) = emu.data_source_ids
    page = get_page(session, emu, ds, access_token(session, emu, ds)).json()
    truth = emu.truth()
    assert [r["id"] for r in truth["responses"]] == [r["id"] for r in page["responses"]]
    for served, record in zip(page["responses"], truth["responses"], strict=True):
        assert parse_instant(served["createdAt"]).isoformat() == record["created_at"]
        assert parse_instant(served["updatedAt"]).isoformat() == record["updated_at"]
        assert record["answer_count"] == len(served.get("answers") or [])
    assert truth["forms"][0]["question_count"] == len(page["form"]["questions"])


def test_messy_data_has_every_documented_oddity(emulator: EmulatorFactory) -> None:
    emu = emulator(forms=[FormSpec(responses=400, seed=s) for s in (1, 2)])
    truth = emu.truth()
    docs = [r for ds in emu.data_source_ids for r in _served(emu, ds)]
    assert {q["type"] for q in truth["questions"]} == set(QUESTION_TYPES)
    question_ids = {(q["form_id"], q["id"]) for q in truth["questions"]}
    answered = {(a["form_id"], a["question_id"]) for a in truth["answers"]}
    assert answered - question_ids, "answers to a deleted question"
    for form in truth["forms"]:  # its last question was added later: older responses lack it
        last = max(
            (q for q in truth["questions"] if q["form_id"] == form["id"]),
            key=lambda q: q["position"],
        )
        order = [r["id"] for r in truth["responses"] if r["form_id"] == form["id"]]
        positions = [
            order.index(a["response_id"])
            for a in truth["answers"]
            if (a["form_id"], a["question_id"]) == (form["id"], last["id"])
        ]
        assert positions
        assert min(positions) >= len(order) // 3
    assert any(r["respondent_account_id"] is None for r in truth["responses"])
    assert any(r["issue_id"] is None for r in truth["responses"])
    assert any(r["answer_count"] == 0 for r in truth["responses"])
    assert any(len(r["created_issues"]) >= 3 for r in truth["responses"])
    assert any(a["value"] is None for a in truth["answers"])
    values = [json.loads(a["value"]) for a in truth["answers"] if a["value"] is not None]
    assert any(isinstance(v, float) for v in values)
    assert any(isinstance(v, dict) for v in values)
    assert any(len(str(v).encode()) > 2000 for v in values)
    assert any("respondent" not in d for d in docs)
    assert any(d.get("respondent") == {} for d in docs)
    assert any("answers" not in d for d in docs)
    assert any(r["updated_at"] != r["created_at"] for r in truth["responses"])
    stamps = " ".join(d["createdAt"] for d in docs)
    for pattern in (r"\.\d{3}[+-]\d{4}\b", r"\d{2}Z", r"\.\d{3}[+-]\d{2}:\d{2}", r":\d{2}-05:00"):
        assert re.search(pattern, stamps), pattern
    text = json.dumps(docs, ensure_ascii=False)
    for piece in ("x-extra", "東京", "مرحبا", "שלום", "👩\u200d💻", "\\\\", "\\n"):
        assert piece in text, piece


def _served(emu: Emulator, ds: str) -> list[dict[str, Any]]:
    with requests.Session() as session:
        token = access_token(session, emu, ds)
        return list(get_page(session, emu, ds, token).json()["responses"])


def test_plain_data_is_regular(emulator: EmulatorFactory) -> None:
    emu = emulator(forms=[FormSpec(responses=50, answers_per_response=20, messy=False)])
    truth = emu.truth()
    assert len(truth["answers"]) == 50 * 20
    assert all(r["answer_count"] == 20 for r in truth["responses"])
    docs = _served(emu, emu.data_source_ids[0])
    assert all(re.fullmatch(r".*\.\d{3}\+0000", d["createdAt"]) for d in docs)


def test_same_seed_same_data_other_seed_other_data() -> None:
    def truth(seed: int) -> tuple[list[str], dict[str, Any]]:
        emu = Emulator(forms=[FormSpec(responses=50, seed=seed), FormSpec(responses=20, seed=seed)])
        return emu.data_source_ids, emu.truth()

    assert truth(3) == truth(3)
    assert truth(3) != truth(4)


def test_rendered_timestamps_are_the_same_instant() -> None:
    moment = datetime(2026, 1, 15, 14, 23, 45, 123000, tzinfo=timezone.utc)
    for style in STYLES:
        for offset in (0, 120, -300, 330):
            assert parse_instant(render(moment, style, offset)) == moment
    assert render(moment.replace(microsecond=0), "jira") == "2026-01-15T14:23:45.000+0000"
    assert render(moment.replace(microsecond=0), "zulu") == "2026-01-15T14:23:45Z"
    assert render(moment, "colon_millis", 120) == "2026-01-15T16:23:45.123+02:00"
    assert render(moment.replace(microsecond=0), "colon", -300) == "2026-01-15T09:23:45-05:00"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, None),
        ("é", "é"),
        (True, "true"),
        (False, "false"),
        (3, "3"),
        (2.5, "2.5"),
        (["a", None, "b"], "a, b"),
        ([], ""),
        ({"accountId": "1", "displayName": "Ada"}, "Ada"),
        ({"b": 1, "a": "é"}, '{"a":"é","b":1}'),
    ],
)
def test_value_text(value: Any, text: str | None) -> None:
    assert value_text(value) == text
