"""``python -m tap_smartforms_emulator``: serve generated data until SIGTERM or SIGINT.

The tap config file is written (mode 0600, atomically) only once the server
listens, so its appearance is the readiness signal; a truth file, if asked for,
is written before it.

While it runs, two test-only endpoints stand in for what a person does at Atlassian:
``POST /_emulator/code?dataSourceId=ID`` answers ``{"code": "..."}``, an authorization
code for ``tap-smartforms-auth`` (valid 5 minutes, once), and
``POST /_emulator/revoke?dataSourceId=ID`` revokes every token chain of that data
source (its next refresh fails with ``invalid_grant``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from .data import FormSpec
from .emulator import Emulator
from .truth import row_counts


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tap_smartforms_emulator",
        description="Local emulator of the Smart Forms for Jira Data Source API.",
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1, 0 for a free one")
    parser.add_argument("--forms", type=int, default=3, help="data sources, one form each")
    parser.add_argument("--responses", type=int, default=250, help="responses per form")
    parser.add_argument("--seed", type=int, default=7)
    style = parser.add_mutually_exclusive_group()
    style.add_argument(
        "--messy",
        dest="messy",
        action="store_true",
        default=True,
        help="realistic, messy data (default)",
    )
    style.add_argument(
        "--plain", dest="messy", action="store_false", help="regular, compact data for benchmarks"
    )
    parser.add_argument("--answers-per-response", type=int, default=None)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per data request")
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=100,
        help="data requests per minute per token chain, 0 for none",
    )
    parser.add_argument("--access-token-ttl", type=float, default=3600.0)
    parser.add_argument("--reuse-window", type=float, default=600.0)
    parser.add_argument("--max-body-bytes", type=int, default=5_000_000)
    parser.add_argument("--omit-paging-fields", action="store_true")
    parser.add_argument("--ignore-updated-from", action="store_true")
    parser.add_argument(
        "--api-drift",
        action="store_true",
        help="serve fields renamed and added at every level (tap_smartforms_emulator/drift.py)",
    )
    parser.add_argument(
        "--unsorted",
        action="store_true",
        help="serve responses out of the assumed createdAt, id order (neighbours swapped)",
    )
    parser.add_argument(
        "--epoch-timestamps",
        action="store_true",
        help="render the form's and responses' timestamps as epoch milliseconds",
    )
    parser.add_argument(
        "--ignore-offset", action="store_true", help="serve every page from offset 0"
    )
    parser.add_argument(
        "--silent-page-cap",
        type=int,
        default=None,
        metavar="N",
        help="never send more than N responses a page, yet echo the limit asked for",
    )
    parser.add_argument("--write-config", type=Path, help="write a ready tap config here")
    parser.add_argument("--write-truth", type=Path, help="write truth row counts per stream here")
    parser.add_argument(
        "--write-truth-records", type=Path, help="write the full truth records per stream here"
    )
    return parser


def _write_private(path: Path, payload: Any) -> None:
    """Write JSON to ``path`` with mode 0600, atomically (a temp file, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, ensure_ascii=False, indent=2)
            handle.write("\n")
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    specs = [
        FormSpec(
            responses=args.responses,
            answers_per_response=args.answers_per_response,
            messy=args.messy,
            # Distinct seeds: forms generated from one seed would share their ids.
            seed=args.seed + index,
        )
        for index in range(args.forms)
    ]
    emulator = Emulator(
        specs,
        access_token_ttl=args.access_token_ttl,
        reuse_window=args.reuse_window,
        rate_limit_per_minute=args.rate_limit or None,
        latency=args.latency,
        max_body_bytes=args.max_body_bytes,
        omit_paging_fields=args.omit_paging_fields,
        ignore_updated_from=args.ignore_updated_from,
        api_drift=args.api_drift,
        unsorted=args.unsorted,
        epoch_timestamps=args.epoch_timestamps,
        ignore_offset=args.ignore_offset,
        silent_page_cap=args.silent_page_cap,
        port=args.port,
    )
    emulator.prerender()
    if stop.is_set():
        return 0
    with emulator:
        if args.write_truth or args.write_truth_records:
            truth = emulator.truth()
            if args.write_truth_records:
                _write_private(args.write_truth_records, truth)
            if args.write_truth:
                _write_private(args.write_truth, row_counts(truth))
        if args.write_config:
            _write_private(args.write_config, emulator.tap_config())
        print(f"emulator listening on {emulator.base_url}", file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
