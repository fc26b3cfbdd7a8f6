"""A local emulator of the Smart Forms for Jira Data Source API (docs/api-contract.md).

In-process::

    from tap_smartforms_emulator import Emulator, FormSpec

    with Emulator(forms=[FormSpec(responses=120, seed=1)]) as emu:
        config = emu.tap_config(token_store_path=str(tmp_path / "tokens.json"))
        ...
        assert records == emu.truth()

Out of process: ``python -m tap_smartforms_emulator --help``.
"""

from .clock import ManualClock, ManualWallClock
from .data import QUESTION_TYPES, FormSpec
from .emulator import (
    APP_ID,
    DATA_PATH,
    ENVIRONMENT_ID,
    TOKEN_PATH,
    AddedQuestion,
    DataRequestCallback,
    Emulator,
)
from .faults import DATA_FAULTS, FAILURES, TOKEN_FAULTS
from .stats import RequestLogEntry, Stats
from .truth import COLUMNS, PRIMARY_KEYS, STREAMS, Truth, value_text

__all__ = [
    "APP_ID",
    "COLUMNS",
    "DATA_FAULTS",
    "DATA_PATH",
    "ENVIRONMENT_ID",
    "FAILURES",
    "PRIMARY_KEYS",
    "QUESTION_TYPES",
    "STREAMS",
    "TOKEN_FAULTS",
    "TOKEN_PATH",
    "AddedQuestion",
    "DataRequestCallback",
    "Emulator",
    "FormSpec",
    "ManualClock",
    "ManualWallClock",
    "RequestLogEntry",
    "Stats",
    "Truth",
    "value_text",
]
