#!/usr/bin/env python3
"""Speed of the three engines, measured in one run and printed as a table.

    python bench/engines.py [--quick]

Boxes are scaled with sqrt(n / 100) so every size keeps the default packing
fraction (100 particles in 800 x 600). Ratios are computed from this run's own
figures; nothing is compared against numbers from elsewhere.
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np

from partisim.sim import SimParams, simulate


def params_for(n: int, steps: int) -> SimParams:
    scale = math.sqrt(n / 100)
    return SimParams(particles=n, steps=steps, width=800.0 * scale, height=600.0 * scale, seed=42)


def best_of(params: SimParams, engine: str, repeats: int) -> float:
    """Best stepping-loop time over a few repeats (the machine is noisy)."""
    return min(simulate(params, engine).simulation_time for _ in range(repeats))


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmark de los motores de simulación.")
    parser.add_argument("--quick", action="store_true", help="menos pasos y repeticiones (prueba rápida)")
    args = parser.parse_args()
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
        rate = {}
        for engine in engines:
            steps = fast_steps if engine == "cython" else slow_steps
            p = params_for(n, steps)
            t = best_of(p, engine, repeats=3 if engine == "cython" else 1)
            rate[engine] = n * steps / t
            rows.append((n, engine, steps, t, rate[engine]))
            if engine == "cython":
                cython_fit.append((n, t / steps))
        if "python" in rate:
            rows.append((n, "cython/python", None, None, rate["cython"] / rate["python"]))
            rows.append((n, "cython/numpy", None, None, rate["cython"] / rate["numpy"]))

    print(f"{'n':>8}  {'motor':<14} {'pasos':>6} {'segundos':>10} {'partículas-paso/s':>20}")
    for n, engine, steps, t, value in rows:
        if steps is None:
            print(f"{n:>8}  {engine:<14} {'':>6} {'':>10} {'x ' + format(value, '.1f'):>20}")
        else:
            print(f"{n:>8}  {engine:<14} {steps:>6} {t:>10.4f} {value:>20,.0f}".replace(",", " "))
    logs = np.log([[n, t] for n, t in cython_fit])
    exponent = float(np.polyfit(logs[:, 0], logs[:, 1], 1)[0])
    print(f"\nExponente ajustado del tiempo por paso de cython frente a n: {exponent:.3f}")
    big = [r for r in rows if r[0] == 100_000 and r[1] == "cython"][0]
    speedups = [r[4] for r in rows if r[1] == "cython/python"]
    print(f"cython/python mínimo: x{min(speedups):.1f} (objetivo >= 50)")
    print(f"cython a n=100 000: {big[4]:,.0f} partículas-paso/s (objetivo >= 2e7)".replace(",", " "))
    print(f"exponente: {exponent:.3f} (objetivo <= 1.15)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
