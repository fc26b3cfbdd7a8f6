"""Run one command and print its own wall time, CPU time and peak RSS as JSON.

    python scripts/measure.py STDERR_LOG COMMAND...

The benchmark starts every contender through this small process on purpose: Linux
counts, in a child's peak RSS, the memory it shared with its parent before exec,
so a contender started straight from the benchmark (which holds the emulator's
data) would be charged for it. Started from here, it inherits only this script.
The command's stdout goes to /dev/null, its stderr to STDERR_LOG.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def main(log_path: str, command: list[str]) -> None:
    with open(os.devnull, "wb") as devnull, open(log_path, "wb") as log:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=devnull, stderr=log)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    report = {
        "exit_code": os.waitstatus_to_exitcode(status),
        "wall_seconds": wall,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
