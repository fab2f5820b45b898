"""Per-group statistics of simulation times: one group per engine x size x configuration
(runs on more than one thread are a configuration of their own), and the python/cython
speed-ups between groups."""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from partisim.protocol import TaskView
from partisim.serve.queue.task import TimeStats
from partisim.sim.params import PARTICLES_KEY, SEED_KEY, STEPS_KEY, ApiParams

__all__ = ["PARAM_LABELS", "Params", "Group", "group_times", "pool", "Speedup", "speedups"]

#: parameters that name a configuration besides the engine, with their short Spanish names
#: (particles are the x axis and seeds are what a mean is taken over)
PARAM_LABELS = {
    "NUM_PASOS": "pasos",
    "ANCHO_MUNDO": "ancho",
    "ALTO_MUNDO": "alto",
    "RADIO_PARTICULA": "radio",
    "DT": "dt",
    "VELOCIDAD_INICIAL_MAX": "v. máx.",
    "COEF_RESTITUCION_PARED": "rest. pared",
    "COEF_RESTITUCION_PARTICULA": "rest. partículas",
    "threads": "hilos",
}
_NOT_CONFIG = (PARTICLES_KEY, STEPS_KEY, SEED_KEY)

Params = tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Group:
    """Simulation times of the successful runs of one engine at one size and one
    configuration: ``params`` holds every parameter but particles, steps and seed."""

    engine: str
    particles: int
    steps: int
    n: int
    mean: float
    stdev: float
    params: Params = ()


def _stats(n: int, total: float, total_sq: float) -> tuple[float, float]:
    """(mean, sample standard deviation) from a count, a sum and a sum of squares."""
    mean = total / n
    if n < 2:
        return mean, 0.0
    var = (total_sq - total * total / n) / (n - 1)
    # equal times leave only rounding noise (possibly below zero)
    return mean, math.sqrt(var) if var > mean * mean * 1e-12 else 0.0


def _other_params(params: ApiParams, threads: int | None = None) -> Params:
    """The configuration: every parameter but particles, steps and seed, plus the
    threads of a run on several (a configuration of its own, as `TaskQueue.time_stats`
    groups them)."""
    extra = {"threads": threads} if threads is not None and threads > 1 else {}
    return tuple(sorted((k, v) for k, v in {**params, **extra}.items() if k not in _NOT_CONFIG))


def group_times(tasks: Iterable[TaskView]) -> list[Group]:
    """Successful, non-verification runs grouped by engine x particles x steps x the
    other parameters (the same grouping `pool` gets from SQL)."""
    found: dict[tuple[str, int, int, Params], list[float]] = defaultdict(list)
    for task in tasks:
        r = task.result
        if task.status != "success" or task.verify_of or r is None:
            continue
        found[(r.engine, r.particles, r.steps, _other_params(task.params, r.threads))].append(r.simulation_time)
    return [
        Group(e, n, s, len(ts), statistics.fmean(ts), statistics.stdev(ts) if len(ts) > 1 else 0.0, p)
        for (e, n, s, p), ts in sorted(found.items())
    ]


def pool(stats: Iterable[TimeStats]) -> list[Group]:
    """Per-batch sums from `TaskQueue.time_stats` pooled into one group per engine x
    particles x steps x other parameters (over every batch given)."""
    sums: dict[tuple[str, int, int, str, int], list[float]] = {}
    for st in stats:
        acc = sums.setdefault((st.engine, st.particles, st.steps, st.params, st.threads), [0, 0.0, 0.0])
        acc[0] += st.n
        acc[1] += st.total
        acc[2] += st.total_sq
    groups = []
    for (engine, particles, steps, rest, threads), (n, total, total_sq) in sums.items():
        mean, stdev = _stats(int(n), total, total_sq)
        groups.append(Group(engine, particles, steps, int(n), mean, stdev, _other_params(json.loads(rest), threads)))
    return sorted(groups, key=lambda g: (g.engine, g.particles, g.steps, g.params))


@dataclass(frozen=True)
class Speedup:
    particles: int
    steps: int
    python_mean: float
    cython_mean: float
    params: Params = ()

    @property
    def value(self) -> float:
        return self.python_mean / self.cython_mean if self.cython_mean > 0 else float("inf")


def speedups(groups: Iterable[Group]) -> list[Speedup]:
    """cython vs python at each size and configuration where both engines ran."""
    by_size: dict[tuple[int, int, Params], dict[str, Group]] = defaultdict(dict)
    for g in groups:
        by_size[(g.particles, g.steps, g.params)][g.engine] = g
    out = []
    for (n, s, p), engines in sorted(by_size.items()):
        if "python" in engines and "cython" in engines:
            out.append(Speedup(n, s, engines["python"].mean, engines["cython"].mean, p))
    return out
