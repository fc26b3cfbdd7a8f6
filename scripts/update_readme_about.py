"""Rewrite the README's plugin reference from `tap-smartforms --about --format=markdown`.

    .venv/bin/python scripts/update_readme_about.py           # rewrite README.md
    .venv/bin/python scripts/update_readme_about.py --check   # exit 1 if it is stale

The reference sits between ``<!-- about:start -->`` and ``<!-- about:end -->``, with
its headings moved two levels down so they nest under the README's
"## Plugin reference". tests/test_readme.py runs ``--check``.
"""

from __future__ import annotations

import argparse
import difflib
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
START = "<!-- about:start -->"
END = "<!-- about:end -->"
_HEADING = re.compile(r"^(#{1,4}) ", flags=re.MULTILINE)


def about_markdown() -> str:
    """The tap's --about in markdown, as the installed tap prints it now."""
    completed = subprocess.run(
        [sys.executable, "-m", "tap_smartforms", "--about", "--format=markdown"],
        capture_output=True,
        text=True,
        check=True,
    )
    return completed.stdout


def reference_block(markdown: str) -> str:
    """What goes between the markers: the --about output, headings two levels down."""
    return _HEADING.sub(r"\1## ", markdown.strip()) + "\n"


def with_reference(readme: str, block: str) -> str:
    """The README with ``block`` between the markers (which must both be there)."""
    start, end = readme.find(START), readme.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"README.md needs {START} and then {END}")
    return readme[: start + len(START)] + "\n" + block + readme[end:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the copy is stale")
    parser.add_argument("--readme", type=Path, default=README)
    args = parser.parse_args()
    current = args.readme.read_text(encoding="utf-8")
    updated = with_reference(current, reference_block(about_markdown()))
    if updated == current:
        return 0
    if args.check:
        diff = difflib.unified_diff(
            current.splitlines(keepends=True),
            updated.splitlines(keepends=True),
            f"{args.readme} (now)",
            f"{args.readme} (from --about)",
        )
        sys.stderr.writelines(diff)
        print(
            f"{args.readme}: the plugin reference is stale; "
            "run .venv/bin/python scripts/update_readme_about.py",
            file=sys.stderr,
        )
        return 1
    args.readme.write_text(updated, encoding="utf-8")
    print(f"{args.readme}: plugin reference updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
