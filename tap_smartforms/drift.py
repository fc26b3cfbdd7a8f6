"""API drift: the fields the API sent that we do not map, and assumed ones it never sent.

Much of the API's shape is assumed (``docs/api-contract.md``). A wrong guess must
not pass unnoticed: ``api_shape.py`` keeps every field it does not read in the
``extra`` column, and tells a ``FieldTally`` which keys each JSON object carried.
At the end of a run (and in ``tap-smartforms doctor``) the tally says, once per
data source rather than once per record, which fields the API sent that we do not
map and which assumed fields never appeared. That report is what a user pastes
into a bug report, and what tells us how to change ``api_shape.py``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# At most this many fields named per line; the rest are counted.
_MAX_FIELDS_NAMED = 12


@dataclass
class _KindTally:
    # How many objects carried each set of keys, as the key tuple in the order
    # sent: a server sends few distinct shapes, so this is one dict update per
    # object, far cheaper than counting every key of every answer.
    shapes: Counter[tuple[str, ...]] = field(default_factory=Counter)
    not_objects: int = 0

    @property
    def objects(self) -> int:
        return sum(self.shapes.values())

    @property
    def keys(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for shape, count in self.shapes.items():
            for key in set(shape):
                counts[key] += count
        return counts


class FieldTally:
    """Counts, per kind of JSON object ("responses", "answers", ...), how many were
    seen and how often each key was present. Cheap enough to run on every record:
    one ``Counter.update`` over an object's keys. One tally per data source, used
    by one thread at a time."""

    def __init__(
        self,
        known_fields: Mapping[str, Iterable[str]],
        expected_fields: Mapping[str, Iterable[str]],
    ) -> None:
        self._known = {kind: frozenset(names) for kind, names in known_fields.items()}
        self._expected = {kind: sorted(names) for kind, names in expected_fields.items()}
        self._kinds: dict[str, _KindTally] = {kind: _KindTally() for kind in self._known}
        self.repeated_ids = 0

    def saw(self, kind: str, raw: Mapping[str, Any]) -> None:
        self._kinds[kind].shapes[tuple(raw)] += 1

    def saw_not_an_object(self, kind: str) -> None:
        self._kinds[kind].not_objects += 1

    def unmapped_fields(self) -> list[tuple[str, int, int]]:
        """``(kind.field, objects carrying it, objects of the kind)`` for every field
        the API sent that we do not read, most common first."""
        found = [
            (f"{kind}.{name}", count, tally.objects)
            for kind, tally in self._kinds.items()
            for name, count in tally.keys.items()
            if name not in self._known[kind]
        ]
        return sorted(found, key=lambda item: (-item[1], item[0]))

    def absent_fields(self) -> list[tuple[str, int]]:
        """``(kind.field, objects of the kind)`` for every expected field that none of
        the objects of its kind carried (only kinds seen at least once). Optional
        fields (a description, an issue) are often absent from a whole form, so only
        the expected ones count."""
        absent = []
        for kind, names in self._expected.items():
            tally = self._kinds[kind]
            if objects := tally.objects:
                seen = tally.keys
                absent += [(f"{kind}.{name}", objects) for name in names if seen[name] == 0]
        return absent

    def skipped_items(self) -> list[tuple[str, int]]:
        """``(kind, count)`` of list items that were not JSON objects, so not records."""
        return [(kind, t.not_objects) for kind, t in self._kinds.items() if t.not_objects]

    def report_lines(self) -> list[str]:
        """What differs from the assumed shape, in a few readable lines (none if nothing)."""
        lines = []
        if unmapped := self.unmapped_fields():
            named = [f"{name} ({count} of {total} read)" for name, count, total in unmapped]
            lines.append(
                "fields the API sent that the tap does not map (kept in the extra column): "
                + _listed(named)
            )
        if absent := self.absent_fields():
            # Counts are of objects read: the overlap of consecutive pages is read twice.
            named = [f"{name} absent in all {total} read" for name, total in absent]
            lines.append("assumed fields the API never sent: " + _listed(named))
        if skipped := self.skipped_items():
            named = [f"{count} in {kind}" for kind, count in skipped]
            lines.append("list items that are not JSON objects, skipped: " + _listed(named))
        if self.repeated_ids:
            lines.append(
                f"{self.repeated_ids} response ids repeated within a page; each was emitted once"
            )
        return lines


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_FIELDS_NAMED])
    more = len(items) - _MAX_FIELDS_NAMED
    return f"{shown} and {more} more" if more > 0 else shown
