"""What the finished results of a batch say about physics: the "Física" line (measured
pair collisions over kinetic theory, `partisim.sim.rate_check`) and the distinct
warnings the results carry. Both come from the per-batch sums `TaskQueue.time_stats`
computes in SQL, never from decoding results one by one."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from partisim.errors import ParamsError
from partisim.protocol import ChartPhysics
from partisim.serve.queue.task import TimeStats
from partisim.sim import parse_params
from partisim.sim.params import PARTICLES_KEY, STEPS_KEY
from partisim.sim.rate_check import RunTotals, check_rate

__all__ = ["physics_line", "result_warnings", "MAX_WARNINGS"]

#: distinct warnings listed; past that, one line counts the rest
MAX_WARNINGS = 5


def physics_line(stats: Iterable[TimeStats]) -> ChartPhysics | None:
    """The Física line of these results (pooled over engines and batches); None without results."""
    sums: dict[tuple[int, int, str], list[Any]] = {}
    for st in stats:
        acc = sums.setdefault((st.particles, st.steps, st.params), [0, 0, 0.0])
        acc[0] += st.n
        acc[1] += st.collisions
        acc[2] += st.energy
    totals = []
    for (particles, steps, rest), (runs, collisions, energy) in sums.items():
        try:
            params = parse_params({**json.loads(rest), PARTICLES_KEY: particles, STEPS_KEY: steps})
        except (ParamsError, ValueError, TypeError):
            continue  # a row of some older version that no longer validates: not comparable
        totals.append(RunTotals(params, runs, collisions, energy))
    check = check_rate(totals)
    if check is None:
        return None
    return ChartPhysics(
        text=check.text(),
        shown=check.shown,
        ratio=check.ratio,
        expected=check.expected,
        tasks=check.runs,
        collisions=check.collisions,
        left_out=check.left_out,
    )


def result_warnings(stats: Iterable[TimeStats]) -> list[str]:
    """The distinct warnings of these results, in order; at most MAX_WARNINGS, then a count."""
    found = list(dict.fromkeys(w for st in stats for w in st.warnings))
    if len(found) <= MAX_WARNINGS:
        return found
    more = len(found) - MAX_WARNINGS
    return [
        *found[:MAX_WARNINGS],
        f"y {more} aviso{'s' if more > 1 else ''} más en estos resultados (vea partisim results)",
    ]
