#!/usr/bin/env python3
"""Kinetic theory against measurement: the table of docs/fisica.md, section 9.

    python bench/theory.py [--quick]

Each row is what `partisim theory --run` does (elastic, cython engine, seed 42):
half the run to relax, the second half measured. About a minute; --quick
runs a tenth of the steps (about three times the statistical error).
"""

from __future__ import annotations

import argparse
import sys

from partisim.sim import SimParams, measure_run, predict

# (label, particles, width, height, dt, steps): about 200 000 collisions in the measured half
PLAN = [
    ("0.01", 1000, 3236.0, 2427.0, 0.1, 76_000),
    ("0.01", 1000, 3236.0, 2427.0, 0.01, 760_000),
    ("0.05", 1000, 1447.0, 1085.0, 0.1, 14_200),
    ("0.05", 1000, 1447.0, 1085.0, 0.01, 142_000),
    ("0.2", 1000, 724.0, 543.0, 0.1, 5_400),
    ("0.2", 1000, 724.0, 543.0, 0.01, 54_000),
    ("0.0164 (por defecto)", 100, 800.0, 600.0, 0.1, 460_000),
    ("0.0164 (por defecto)", 100, 800.0, 600.0, 0.01, 2_000_000),
]


def main() -> int:
    parser = argparse.ArgumentParser(description="Teoría cinética frente a medición (tabla de docs/fisica.md).")
    parser.add_argument("--quick", action="store_true", help="una décima parte de los pasos")
    args = parser.parse_args()
    print(
        "| η | dt | pasos | a | teoría (colisiones/t) | medido | medido/teoría | pérdida estimada "
        "| pared medido/teoría |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for label, n, width, height, dt, planned in PLAN:
        steps = max(2, planned // 10) if args.quick else planned
        params = SimParams(
            particles=n, width=width, height=height, dt=dt, steps=steps, wall_restitution=1.0, particle_restitution=1.0
        )
        m = measure_run(params, "cython")
        p = predict(params, m.temperature)
        print(
            f"| {label} | {dt:g} | {steps} | {p.step_ratio:.3g} | {p.collision_rate_theory:.4g} "
            f"| {m.collision_rate_measured:.4g} | {m.collision_rate_measured / p.collision_rate_theory:.3f} "
            f"| {100 * p.missed_fraction_estimate:.2g} % | {m.wall_rate_measured / p.wall_rate_theory:.3f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
