"""Benchmark: `meltano run tap-smartforms target-postgres` with RECORD against BATCH
messages, side by side in one run.

    .venv/bin/python scripts/benchmark_batch.py                    # installs Meltano's plugins
    .venv/bin/python scripts/benchmark_batch.py --meltano-sys-dir DIR   # install there once

One form on the local emulator (in this process), loaded into a fresh schema of the
PostgreSQL server meltano.yml names (127.0.0.1:5432), once with RECORD messages and
once with `batch_config` (jsonl, gzip, a scratch folder), alternating for
``--rounds`` rounds. Prints each mode's records per second of wall time (the whole
`meltano run`: tap, target and Meltano's start-up) and the ratio BATCH/RECORD.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tap_smartforms_emulator import Emulator, FormSpec  # noqa: E402
from tests.conftest import MeltanoProject, plugin_env  # noqa: E402
from tests.test_meltano import Postgres  # noqa: E402


def run_once(project: MeltanoProject, emulator: Emulator, scratch: Path, *, batch: bool) -> float:
    """Wall seconds of one `meltano run` into a schema of its own (dropped after)."""
    warehouse = Postgres()
    config = emulator.tap_config(token_store_path=str(scratch / "tokens.json"))
    env = {**plugin_env("tap-smartforms", config), **warehouse.env()}
    if batch:
        env |= {
            "TAP_SMARTFORMS_BATCH_CONFIG_ENCODING_FORMAT": "jsonl",
            "TAP_SMARTFORMS_BATCH_CONFIG_ENCODING_COMPRESSION": "gzip",
            "TAP_SMARTFORMS_BATCH_CONFIG_STORAGE_ROOT": (scratch / "batches").as_uri(),
        }
    try:
        started = time.perf_counter()
        suffix = uuid.uuid4().hex
        result = project.run(
            "run", "--state-id-suffix", suffix, "tap-smartforms", "target-postgres", env=env
        )
        wall = time.perf_counter() - started
        if result.returncode != 0:
            raise SystemExit(result.stderr[-3000:])
        return wall
    finally:
        warehouse.drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--meltano-sys-dir", type=Path, help="Meltano system dir (plugins installed there once)"
    )
    parser.add_argument("--responses", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tap-smartforms-bench-batch-") as scratch_name:
        scratch = Path(scratch_name)
        project = MeltanoProject(args.meltano_sys_dir or scratch / "meltano")
        if not (project.sys_dir / "extractors" / "tap-smartforms").is_dir():
            project.sys_dir.mkdir(parents=True, exist_ok=True)
            installed = project.run("install")
            if installed.returncode != 0:
                raise SystemExit(installed.stderr[-3000:])
        spec = FormSpec(responses=args.responses, answers_per_response=10, messy=False, seed=9)
        with Emulator(forms=[spec], rate_limit_per_minute=None) as emulator:
            emulator.prerender()
            records = sum(len(rows) for rows in emulator.truth().values())
            walls: dict[str, list[float]] = {"RECORD": [], "BATCH": []}
            for _ in range(args.rounds):  # alternating, so drift hits both alike
                walls["RECORD"].append(run_once(project, emulator, scratch, batch=False))
                walls["BATCH"].append(run_once(project, emulator, scratch, batch=True))
    rates = {mode: records / statistics.median(w) for mode, w in walls.items()}
    print(
        f"meltano run tap-smartforms target-postgres: 1 form, {args.responses:,} responses "
        f"x 10 answers = {records:,} records, median of {args.rounds} alternating runs"
    )
    for mode, rate in rates.items():
        print(f"    {mode:<7} {statistics.median(walls[mode]):6.1f} s   {rate:8,.0f} records/s")
    print(f"    ratio BATCH/RECORD  {rates['BATCH'] / rates['RECORD']:5.2f}x records/s")


if __name__ == "__main__":
    main()
