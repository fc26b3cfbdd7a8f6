"""Print the rows per table the demo loaded into DuckDB, next to the emulator's truth.

    python scripts/print_counts.py output/demo.duckdb .demo/emulator/truth.json

Exits 1 when a table's row count differs from what the emulator holds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import duckdb

SCHEMA = "smartforms"
STREAMS = ("forms", "questions", "responses", "answers", "attachments")


def main(database: Path, truth_path: Path) -> int:
    expected: dict[str, int] = json.loads(truth_path.read_text(encoding="utf-8"))
    with duckdb.connect(str(database), read_only=True) as connection:
        loaded = {
            table: connection.execute(f'select count(*) from {SCHEMA}."{table}"').fetchone()[0]  # type: ignore[index]
            for table in STREAMS
        }
    width = max(map(len, STREAMS))
    print(f"{'table':<{width}}  {'rows':>7}  {'emulator':>8}")
    for table in STREAMS:
        mark = "" if loaded[table] == expected[table] else "  <- differs"
        print(f"{table:<{width}}  {loaded[table]:>7}  {expected[table]:>8}{mark}")
    mismatched = [table for table in STREAMS if loaded[table] != expected[table]]
    if mismatched:
        print(f"row counts differ from the emulator for: {', '.join(mismatched)}", file=sys.stderr)
        return 1
    print(f"all {len(STREAMS)} tables match the emulator ({database}, schema {SCHEMA})")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
