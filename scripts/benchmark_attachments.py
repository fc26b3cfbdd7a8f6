"""Benchmark: attachment downloads (attachments.py) against a plain ``requests``
streaming copy of the same files, side by side in one run.

    .venv/bin/python scripts/benchmark_attachments.py [--files 24] [--megabytes 4]

The local emulator (in this process) serves ``--files`` files of ``--megabytes`` MB
each on the API's own host, so the tap sends its token and counts each download
against the request budget. Each side copies every file to a fresh local folder:
the plain copy one file after another with ``requests`` (1 MB chunks; once without
and once with the SHA-256 the tap computes),
the tap's downloader with 1 and with 4 parallel downloads. Three rounds; the median
MB/s of each, and its ratio to the plain copy, are printed.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tap_smartforms import settings as settings_module  # noqa: E402
from tap_smartforms.attachments import AttachmentDownloader, AttachmentStore  # noqa: E402
from tap_smartforms.client import DataSourceClient  # noqa: E402
from tap_smartforms.tap import build_client  # noqa: E402
from tap_smartforms.token_store import open_store  # noqa: E402
from tap_smartforms_emulator import Emulator, FormSpec  # noqa: E402

ROUNDS = 3
CHUNK = 1024 * 1024


def plain_copy(records: list[dict], folder: Path, *, sha256: bool = False) -> None:
    with requests.Session() as session:
        for number, record in enumerate(records):
            digest = hashlib.sha256()
            with session.get(record["download_url"], stream=True, timeout=60) as reply:
                reply.raise_for_status()
                with (folder / str(number)).open("wb") as out:
                    for chunk in reply.iter_content(CHUNK):
                        if sha256:
                            digest.update(chunk)
                        out.write(chunk)


def tap_copy(records: list[dict], folder: Path, client: DataSourceClient, workers: int) -> None:
    downloader = AttachmentDownloader(
        AttachmentStore(str(folder)),
        workers=workers,
        max_bytes=None,
        deadline_seconds=120,
        logger=logging.getLogger("benchmark"),
    )
    try:
        outcome = downloader.resolve([dict(record) for record in records], client)
    finally:
        downloader.close()
    if outcome.failed:
        raise SystemExit(f"{outcome.failed} downloads failed")


def timed(copy: Callable[[Path], None]) -> float:
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        copy(Path(folder))
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=24)
    parser.add_argument("--megabytes", type=float, default=4.0)
    arguments = parser.parse_args()
    size = int(arguments.megabytes * 1024 * 1024)
    with Emulator([FormSpec(responses=arguments.files, messy=False, seed=9)]) as emulator:
        ds_id = emulator.data_source_ids[0]
        keys = {
            f"att-{emulator.attach_file(ds_id, response_id, f'f{n}.bin', size=size)}"
            for n, response_id in enumerate(emulator.response_ids(ds_id))
        }
        with tempfile.TemporaryDirectory() as home:
            config = emulator.tap_config(token_store_path=f"{home}/tokens.json")
            settings = settings_module.parse(config)
            client = build_client(
                settings,
                settings.data_sources[0],
                open_store(settings.token_store_path),
                user_agent="benchmark",
                logger=logging.getLogger("benchmark"),
            )
            page = client.fetch_page(offset=0, limit=500, updated_from=None)
            records = [r for b in page.responses for r in b.attachments if r["id"] in keys]
            total_mb = len(records) * size / 1e6
            sides: dict[str, Callable[[Path], None]] = {
                "plain requests copy": lambda folder: plain_copy(records, folder),
                "plain copy + sha256": lambda folder: plain_copy(records, folder, sha256=True),
                "tap, 1 at a time": lambda folder: tap_copy(records, folder, client, 1),
                "tap, 4 in parallel": lambda folder: tap_copy(records, folder, client, 4),
            }
            seconds: dict[str, list[float]] = {name: [] for name in sides}
            for _ in range(ROUNDS):
                for name, copy in sides.items():
                    seconds[name].append(timed(copy))
    print(f"{len(records)} files x {size / 1e6:.1f} MB = {total_mb:.0f} MB, median of {ROUNDS}")
    baseline = total_mb / statistics.median(seconds["plain requests copy"])
    for name, times in seconds.items():
        rate = total_mb / statistics.median(times)
        print(f"  {name:22} {rate:8.1f} MB/s   {rate / baseline:5.2f}x plain")


if __name__ == "__main__":
    main()
