#!/usr/bin/env python3
"""Start-up time of the `partisim` command, next to a bare interpreter, measured in one run.

    python bench/startup.py [--runs N]

Each command runs N times as a fresh process; the table shows the fastest and the
median wall time (the fastest is the least disturbed by other work on the machine),
the median CPU time (user + system, which other processes disturb less), and the
modules `partisim --help` must never import.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "partisim --help": [sys.executable, "-m", "partisim", "--help"],
    "partisim run --help": [sys.executable, "-m", "partisim", "run", "--help"],
}
HEAVY = ("numpy", "pydantic", "rich", "httpx", "fastapi", "matplotlib", "sqlite3")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


#: as installed: bytecode cached (a first, untimed run writes it)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(cmd: list[str], runs: int) -> tuple[list[float], list[float]]:
    """(wall times, CPU times) of ``runs`` runs, after one untimed run."""
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True, env=ENV)
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), _cpu()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True, env=ENV)
        wall.append(time.perf_counter() - start)
        cpu.append(_cpu() - start_cpu)
    return wall, cpu


def heavy_imports() -> list[str]:
    code = (
        "import sys, runpy; sys.argv = ['partisim', '--help']\n"
        "try:\n    runpy.run_module('partisim', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        f"print('HEAVY:' + ' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=ENV)
    line = next(x for x in proc.stdout.splitlines() if x.startswith("HEAVY:"))
    return line.removeprefix("HEAVY:").split()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    times = {name: timed(cmd, args.runs) for name, cmd in COMMANDS.items()}
    print(f"{'comando':<24} {'mínimo':>9} {'mediana':>9} {'CPU (mediana)':>14}")
    for name, (wall, cpu) in times.items():
        print(
            f"{name:<24} {min(wall) * 1000:>6.0f} ms {statistics.median(wall) * 1000:>6.0f} ms"
            f" {statistics.median(cpu) * 1000:>11.0f} ms"
        )
    base = min(times["python -c pass"][0])
    print(f"partisim --help sobre el intérprete: +{(min(times['partisim --help'][0]) - base) * 1000:.0f} ms")
    heavy = heavy_imports()
    print("módulos pesados importados por --help: " + (", ".join(heavy) if heavy else "ninguno"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
