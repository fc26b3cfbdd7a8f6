"""target-duckdb 0.8.0, minus its silent loss of the first row of every batch.

target-duckdb loads each batch with ``COPY table FROM 'batch.csv'`` and writes no
header row. DuckDB's CSV sniffer still decides, per file, whether the first line is
a header, and often decides it is: one record per stream per batch is dropped
without a word (the demo lost a form, a question, a response, an answer and an
attachment per run). Upstream fixed it by saying ``header false``
(jwills/target-duckdb#58), but no release on PyPI carries the fix yet.

This wrapper runs the released target unchanged except for that one option. Drop
it, and point the loader back at ``target-duckdb``, once a release has the fix.
"""

from __future__ import annotations

from typing import Any

import target_duckdb

_BATCH_COPY_OPTIONS = "WITH (new_line"
_HEADERLESS_COPY_OPTIONS = "WITH (header false, new_line"


class _HeaderlessCopyConnection:
    """A DuckDB connection whose batch COPY statements say the CSV has no header."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def execute(self, query: str, *args: Any, **kwargs: Any) -> Any:
        if query.startswith("COPY ") and _BATCH_COPY_OPTIONS in query:
            query = query.replace(_BATCH_COPY_OPTIONS, _HEADERLESS_COPY_OPTIONS, 1)
        return self._connection.execute(query, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


_released_connect = target_duckdb.duckdb_connect


def _connect(config: dict[str, Any]) -> _HeaderlessCopyConnection:
    return _HeaderlessCopyConnection(_released_connect(config))


def main() -> None:
    target_duckdb.duckdb_connect = _connect  # main() looks it up at call time
    target_duckdb.main()
