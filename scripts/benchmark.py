"""Benchmark: tap-smartforms against its baselines, side by side in one run.

    .venv/bin/python scripts/benchmark.py            # all three parts
    .venv/bin/python scripts/benchmark.py --part a   # one part (a, b or c)

Each part generates its workload on the local emulator (in this process) and runs
the real tap as a subprocess with stdout to /dev/null, started through
scripts/measure.py, which reads the child's own CPU time and peak memory from the
kernel (os.wait4): the emulator's work and memory are never counted against the tap.

(a) throughput: one form, 20,000 responses x 20 answers, no latency. The tap's CPU
    seconds against the plain-Python floor (scripts/plain_python_floor.py: requests +
    json + the same shaping + one line per record). Paired runs, median of each.
(b) concurrency: 20 data sources x 5 pages, 300 ms server latency. The tap's wall time
    against the ideal: total requests x latency / workers. Also: the 429s the
    emulator sent, and the most requests any token made in a 60-second window.
(c) memory: peak RSS of the tap at 10,000 and at 100,000 responses (5 answers each).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tap_smartforms_emulator import Emulator, FormSpec  # noqa: E402

PYTHON = sys.executable

# Part (b): workers divide the 20 data sources evenly, so the ideal is reachable.
CONCURRENCY_WORKERS = 5
CONCURRENCY_SOURCES = 20
CONCURRENCY_PAGES = 5
CONCURRENCY_PAGE_SIZE = 50
CONCURRENCY_LATENCY = 0.3


@dataclass
class Measured:
    wall_seconds: float
    cpu_seconds: float
    peak_rss_mb: float


def write_config(config: dict[str, Any], workdir: Path, name: str) -> Path:
    path = workdir / f"{name}.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def tap_command(config_path: Path) -> list[str]:
    return [PYTHON, "-m", "tap_smartforms", "--config", str(config_path)]


def floor_command(config_path: Path) -> list[str]:
    return [PYTHON, str(ROOT / "scripts" / "plain_python_floor.py"), str(config_path)]


def run_measured(arguments: list[str], workdir: Path) -> Measured:
    """Run a contender with stdout to /dev/null; its own time and peak RSS."""
    log_path = workdir / "stderr.log"
    measure = [PYTHON, str(ROOT / "scripts" / "measure.py"), str(log_path), *arguments]
    report = json.loads(subprocess.run(measure, capture_output=True, check=True, cwd=ROOT).stdout)
    if report["exit_code"] != 0:
        tail = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-5:]
        command = " ".join(arguments[1:3])
        raise SystemExit(f"{command} exited {report['exit_code']}:\n" + "\n".join(tail))
    return Measured(report["wall_seconds"], report["cpu_seconds"], report["peak_rss_mb"])


def record_count(emulator: Emulator) -> int:
    return sum(len(records) for records in emulator.truth().values())


def throughput(workdir: Path, rounds: int) -> list[str]:
    spec = FormSpec(responses=20_000, answers_per_response=20, messy=False, seed=1)
    with Emulator(forms=[spec], rate_limit_per_minute=None) as emulator:
        emulator.prerender()
        records = record_count(emulator)
        config = write_config(
            emulator.tap_config(token_store_path=str(workdir / "tokens-a.json")), workdir, "a"
        )
        tap_cpu, floor_cpu = [], []
        for _ in range(rounds):  # paired, alternating, so drift hits both alike
            floor_cpu.append(run_measured(floor_command(config), workdir).cpu_seconds)
            tap_cpu.append(run_measured(tap_command(config), workdir).cpu_seconds)
    tap, floor = statistics.median(tap_cpu), statistics.median(floor_cpu)
    return [
        f"(a) throughput: 1 form, 20,000 responses x 20 answers = {records:,} records, "
        f"median of {rounds} paired runs",
        f"    plain-Python floor  {floor:6.2f} s CPU  {floor / records * 1e6:5.1f} us/record",
        f"    tap-smartforms      {tap:6.2f} s CPU  {tap / records * 1e6:5.1f} us/record",
        f"    ratio tap/floor     {tap / floor:6.2f}x   (goal <= 2.0x)",
    ]


def concurrency(workdir: Path) -> list[str]:
    responses = CONCURRENCY_PAGES * CONCURRENCY_PAGE_SIZE
    specs = [
        FormSpec(responses=responses, answers_per_response=5, messy=False, seed=seed)
        for seed in range(CONCURRENCY_SOURCES)
    ]
    with Emulator(forms=specs, latency=CONCURRENCY_LATENCY, rate_limit_per_minute=100) as emulator:
        emulator.prerender()
        config = emulator.tap_config(
            page_size=CONCURRENCY_PAGE_SIZE,
            parallel_data_sources=CONCURRENCY_WORKERS,
            token_store_path=str(workdir / "tokens-b.json"),
        )
        measured = run_measured(tap_command(write_config(config, workdir, "b")), workdir)
        stats = emulator.stats
    requests_needed = CONCURRENCY_SOURCES * CONCURRENCY_PAGES
    ideal = requests_needed * CONCURRENCY_LATENCY / CONCURRENCY_WORKERS
    busiest = max(stats.max_requests_in_any_60s_window_by_ds.values())
    arrivals = [entry.time for entry in stats.request_log]
    fetching = max(arrivals) + CONCURRENCY_LATENCY - min(arrivals)
    return [
        f"(b) concurrency: {CONCURRENCY_SOURCES} data sources x {CONCURRENCY_PAGES} pages, "
        f"{CONCURRENCY_LATENCY * 1000:.0f} ms latency, {CONCURRENCY_WORKERS} workers",
        f"    ideal ({requests_needed} requests x latency / workers)  {ideal:6.2f} s",
        f"    tap-smartforms wall time                  {measured.wall_seconds:6.2f} s "
        f"({stats.data_requests} data requests)",
        f"    ratio tap/ideal     {measured.wall_seconds / ideal:6.2f}x   (goal <= 1.3x)",
        f"    of which first request to last reply {fetching:6.2f} s "
        f"({fetching / ideal:.2f}x ideal); the rest is Python and SDK start-up",
        f"    429 replies {stats.served_429}; most requests by one token in any 60 s: "
        f"{busiest} (budget 100)",
    ]


def memory(workdir: Path) -> list[str]:
    peaks = {}
    for responses in (10_000, 100_000):
        spec = FormSpec(responses=responses, answers_per_response=5, messy=False, seed=3)
        with Emulator(forms=[spec], rate_limit_per_minute=None) as emulator:
            config = emulator.tap_config(token_store_path=str(workdir / "tokens-c.json"))
            peaks[responses] = run_measured(
                tap_command(write_config(config, workdir, f"c-{responses}")), workdir
            ).peak_rss_mb
    ratio = peaks[100_000] / peaks[10_000]
    return [
        "(c) memory: peak RSS of the tap, 1 form, 5 answers per response",
        f"    10,000 responses   {peaks[10_000]:7.1f} MB",
        f"    100,000 responses  {peaks[100_000]:7.1f} MB",
        f"    ratio 100k/10k     {ratio:7.2f}x   (goal <= 1.25x)",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("a", "b", "c"), action="append")
    parser.add_argument("--rounds", type=int, default=3, help="paired runs in part (a)")
    args = parser.parse_args()
    parts = args.part or ["a", "b", "c"]
    with tempfile.TemporaryDirectory(prefix="tap-smartforms-bench-") as scratch:
        workdir = Path(scratch)
        lines: list[str] = []
        if "a" in parts:
            lines += throughput(workdir, args.rounds)
        if "b" in parts:
            lines += concurrency(workdir)
        if "c" in parts:
            lines += memory(workdir)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
