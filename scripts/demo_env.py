"""Print shell `export` lines that hand a tap config file to Meltano as TAP_SMARTFORMS_* variables.

Used by scripts/demo: ``eval "$(python scripts/demo_env.py config.json)"``. Values are
shell-quoted; they are meant for ``eval``, never for a log.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path


def export_lines(config: dict[str, object]) -> list[str]:
    lines = []
    for name, value in config.items():
        text = value if isinstance(value, str) else json.dumps(value)
        lines.append(f"export TAP_SMARTFORMS_{name.upper()}={shlex.quote(str(text))}")
    return lines


if __name__ == "__main__":
    print("\n".join(export_lines(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8")))))
