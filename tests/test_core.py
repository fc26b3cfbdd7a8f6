"""The Singer SDK's standard tap tests, run against the emulator."""

from __future__ import annotations

import atexit

from singer_sdk.testing import SuiteConfig, get_tap_test_class

from tap_smartforms.tap import TapSmartForms
from tap_smartforms_emulator import Emulator, FormSpec

# The SDK builds its test class at import time from a fixed config, so this
# module's emulator starts at import and stops when the test process ends.
_EMULATOR = Emulator(forms=[FormSpec(responses=70, seed=31), FormSpec(responses=20, seed=32)])
_EMULATOR.start()
atexit.register(_EMULATOR.stop)

TestTapSmartForms = get_tap_test_class(
    tap_class=TapSmartForms,
    config=_EMULATOR.tap_config(page_size=25),
    suite_config=SuiteConfig(max_records_limit=None),
)
