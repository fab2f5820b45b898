#!/usr/bin/env python3
"""Speed of the three engines, and of the cython engine on several threads, measured in one run.

    python bench/engines.py [--quick]

Boxes are scaled with sqrt(n / 100) so every size keeps the default packing
fraction (100 particles in 800 x 600). Ratios are computed from this run's own
figures; nothing is compared against numbers from elsewhere. Memory is the peak
RSS growth of one cython run at n = 1 000 000, in a fresh process.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys

import numpy as np

from partisim.sim import SimParams, engine_threads, simulate

# targets of issue 15
SINGLE_1E5 = 3e7  # particle-steps/s, one thread, n = 100 000
SINGLE_1E6 = 2e7  # particle-steps/s, one thread, n = 1 000 000
TWO_THREADS = 1.7  # speed-up of 2 threads over 1 at n >= 100 000
BYTES_PER_PARTICLE = 200

# Peak RSS in KiB: VmHWM where /proc has it (ru_maxrss survives exec on Linux, so a
# child would start from the parent's peak), else ru_maxrss.
MEMORY_PROBE = """
import os, resource, sys
from partisim.sim import get_engine, simulate
sys.path.insert(0, {bench!r})
from engines import params_for

def peak_kib():
    if os.path.exists("/proc/self/status"):
        with open("/proc/self/status") as fh:
            return int(fh.read().split("VmHWM:")[1].split()[0])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

get_engine("cython")
params = params_for({n}, {steps})
before = peak_kib()
simulate(params, "cython")
print((peak_kib() - before) * 1024 / {n})
"""


def params_for(n: int, steps: int) -> SimParams:
    scale = math.sqrt(n / 100)
    return SimParams(particles=n, steps=steps, width=800.0 * scale, height=600.0 * scale, seed=42)


def best_of(params: SimParams, engine: str, repeats: int) -> float:
    """Best stepping-loop time over a few repeats (the machine is noisy)."""
    return min(simulate(params, engine).simulation_time for _ in range(repeats))


def thread_times(params: SimParams, counts: list[int], repeats: int) -> dict[int, float]:
    """Best time per thread count, the counts interleaved so a noisy spell hits them alike;
    checks that every count gives the same checksum."""
    best = {t: math.inf for t in counts}
    sums = set()
    for _ in range(repeats):
        for t in counts:
            result = simulate(params, "cython", threads=t)
            best[t] = min(best[t], result.simulation_time)
            sums.add((result.particle_collisions, result.wall_collisions, result.checksum))
    if len(sums) != 1:
        raise SystemExit(f"los resultados difieren entre números de hilos: {sums}")
    return best


def bytes_per_particle(n: int, steps: int) -> float:
    code = MEMORY_PROBE.format(bench=os.path.dirname(os.path.abspath(__file__)), n=n, steps=steps)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def verdict(ok: bool) -> str:
    return "CUMPLIDO" if ok else "NO CUMPLIDO"


def rate(n: int, steps: int, seconds: float) -> str:
    return f"{n * steps / seconds:,.0f}".replace(",", " ")


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmark de los motores de simulación.")
    parser.add_argument("--quick", action="store_true", help="menos pasos y repeticiones (prueba rápida)")
    args = parser.parse_args()
    if "OPENBLAS_NUM_THREADS" not in os.environ:
        # numpy's dot product (the energy) wakes OpenBLAS's threads, which then spin for a
        # while and take a core from the next multi-threaded run: start again without them
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    q = 0.2 if args.quick else 1.0

    # (n, steps for python/numpy, steps for cython, engines)
    plan = [
        (100, 500, 500, ("python", "numpy", "cython")),
        (1_000, max(10, int(100 * q)), 500, ("python", "numpy", "cython")),
        (10_000, max(2, int(10 * q)), 100, ("python", "numpy", "cython")),
        (100_000, 0, max(5, int(50 * q)), ("cython",)),
    ]
    rows = []
    cython_fit = []
    for n, slow_steps, fast_steps, engines in plan:
        rate_of = {}
        for engine in engines:
            steps = fast_steps if engine == "cython" else slow_steps
            p = params_for(n, steps)
            t = best_of(p, engine, repeats=3 if engine == "cython" else 1)
            rate_of[engine] = n * steps / t
            rows.append((n, engine, steps, t, rate_of[engine]))
            if engine == "cython":
                cython_fit.append((n, t / steps))
        if "python" in rate_of:
            rows.append((n, "cython/python", None, None, rate_of["cython"] / rate_of["python"]))
            rows.append((n, "cython/numpy", None, None, rate_of["cython"] / rate_of["numpy"]))

    print(f"{'n':>8}  {'motor':<14} {'pasos':>6} {'segundos':>10} {'partículas-paso/s':>20}")
    for n, engine, steps, t, value in rows:
        if steps is None:
            print(f"{n:>8}  {engine:<14} {'':>6} {'':>10} {'x ' + format(value, '.1f'):>20}")
        else:
            print(f"{n:>8}  {engine:<14} {steps:>6} {t:>10.4f} {value:>20,.0f}".replace(",", " "))
    logs = np.log([[n, t] for n, t in cython_fit])
    exponent = float(np.polyfit(logs[:, 0], logs[:, 1], 1)[0])
    print(f"\nExponente ajustado del tiempo por paso de cython frente a n: {exponent:.3f}")
    big = next(r for r in rows if r[0] == 100_000 and r[1] == "cython")
    speedups = [r[4] for r in rows if r[1] == "cython/python"]
    print(f"cython/python mínimo: x{min(speedups):.1f} (objetivo >= 50)")
    print(f"cython a n=100 000: {big[4]:,.0f} partículas-paso/s (objetivo >= 2e7)".replace(",", " "))
    print(f"exponente: {exponent:.3f} (objetivo <= 1.15)")

    # threads: the same simulation on 1, 2, ... cores, at n = 1e5 and 1e6
    cores = engine_threads("cython", os.cpu_count() or 1)
    counts = list(range(1, cores + 1)) if cores > 1 else [1, 2]
    # runs of half a second or more: shorter ones measure the start of the threads, not the steps
    sizes = [(100_000, max(5, int(200 * q))), (1_000_000, max(5, int(40 * q)))]
    print(f"\nHilos (motor cython; esta máquina: {os.cpu_count()} núcleos, OpenMP hasta {cores} hilos)")
    print(f"{'n':>8}  {'hilos':>5} {'pasos':>6} {'segundos':>10} {'partículas-paso/s':>20} {'aceleración':>12}")
    single, two = {}, {}
    for n, steps in sizes:
        times = thread_times(params_for(n, steps), counts, repeats=5)
        for t in counts:
            speedup = times[1] / times[t]
            print(f"{n:>8}  {t:>5} {steps:>6} {times[t]:>10.4f} {rate(n, steps, times[t]):>20} {speedup:>11.2f}x")
        single[n] = n * steps / times[1]
        two[n] = times[1] / times[2] if 2 in times else 1.0

    memory_steps = max(5, int(20 * q))
    per_particle = bytes_per_particle(1_000_000, memory_steps)

    print("\nObjetivos del issue 15:")
    for n, target in ((100_000, SINGLE_1E5), (1_000_000, SINGLE_1E6)):
        print(
            f"  1 hilo a n={n:,}: {single[n]:,.0f} partículas-paso/s (objetivo >= {target:.0e}): "
            f"{verdict(single[n] >= target)}".replace(",", " ")
        )
    for n, ratio in two.items():
        text = f"x{ratio:.2f}" if cores > 1 else "no medible (OpenMP con 1 hilo)"
        print(
            f"  2 hilos frente a 1 a n={n:,}: {text} (objetivo >= {TWO_THREADS}): "
            f"{verdict(cores > 1 and ratio >= TWO_THREADS)}".replace(",", " ")
        )
    print(
        f"  memoria a n=1 000 000: {per_particle:.0f} bytes por partícula (pico de RSS; objetivo <= "
        f"{BYTES_PER_PARTICLE}): {verdict(per_particle <= BYTES_PER_PARTICLE)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
