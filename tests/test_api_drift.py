"""First contact with a real API that differs from our picture: nothing lost, drift reported.

The emulator's ``api_drift`` mode renames assumed fields and adds unknown ones at
every level (tap_smartforms_emulator/drift.py); the real tap process must keep every value
it does not map in ``extra`` and name the differences once per data source.
"""

from __future__ import annotations

import json
import re

import pytest

from tap_smartforms_emulator import STREAMS, FormSpec
from tap_smartforms_emulator import drift as emulated_drift
from tests.conftest import by_key


@pytest.fixture
def drifted(emulator):
    return emulator(
        [FormSpec(responses=40, seed=21), FormSpec(responses=25, seed=22)], api_drift=True
    )


def _extras(records: list[dict], stream: str) -> dict:
    return {
        key: json.loads(r["extra"]) if r["extra"] else None
        for key, r in by_key(records, stream).items()
    }


def test_every_unmapped_field_value_reaches_the_extra_column(drifted, run_tap):
    run = run_tap(drifted.tap_config(page_size=10))

    assert run.returncode == 0, run.stderr
    truth = drifted.truth()
    for stream in STREAMS:
        assert run.records(stream), f"{stream}: no records"
        assert _extras(run.records(stream), stream) == _extras(truth[stream], stream), stream


def test_renamed_fields_are_kept_under_their_new_names(drifted, run_tap):
    run = run_tap(drifted.tap_config(page_size=10))

    assert run.returncode == 0, run.stderr
    for response in run.records("responses"):
        extra = json.loads(response["extra"])
        assert response["updated_at"] is None
        assert "lastModifiedAt" in extra
        assert extra["channel"] == f"channel-{response['id']}"


def test_drift_is_reported_once_per_data_source_naming_each_field(drifted, run_tap):
    # The report names the 12 most common unmapped fields, and the envelope's and the
    # form's are counted once per page: pages of 5 (8 and 5 of them) let those
    # outnumber the messy data's occasional extras, so every added field is named.
    run = run_tap(drifted.tap_config(page_size=5))

    assert run.returncode == 0, run.stderr
    drift_lines = [line for line in run.stderr.splitlines() if "API drift" in line]
    for data_source_id in drifted.data_source_ids:
        lines = [line for line in drift_lines if f"data source {data_source_id}:" in line]
        unmapped = [line for line in lines if "does not map" in line]
        absent = [line for line in lines if "never sent" in line]
        assert len(unmapped) == 1, lines
        assert len(absent) == 1, lines
        for name in (*emulated_drift.ADDED, "responses.lastModifiedAt"):
            assert name in unmapped[0], name
        absent_from = re.search(r"responses\.updatedAt absent in all (\d+) read", absent[0])
        assert absent_from is not None, absent[0]
        # Every response was read; the overlap of consecutive pages, twice.
        assert int(absent_from.group(1)) >= len(drifted.response_ids(data_source_id))


def test_a_run_of_the_assumed_shape_reports_no_drift(emulator, run_tap):
    emu = emulator([FormSpec(responses=30, seed=23, messy=False)])

    run = run_tap(emu.tap_config(page_size=10))

    assert run.returncode == 0, run.stderr
    assert run.records("responses")
    assert "API drift" not in run.stderr
