"""Per-group statistics of simulation times: one group per engine x size x configuration,
and the python/cython speed-ups between groups, with their 95% confidence intervals.

A configuration is every parameter but particles, steps and seed, plus how the run was
made: the threads it used (``threads``), the runner (``runner``: process or docker) and
the CPU model it ran on (``cpu``). Runs measured on a busy machine (`Environment.contended`)
are left out unless asked for (`pool`'s ``contended``), and counted.

Repeats report the mean ± standard deviation, the median and the minimum; a group whose
coefficient of variation exceeds `UNSTABLE_CV` is unstable, as pyperf warns about a
benchmark that "seems unstable".
"""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

from partisim.protocol import TaskView
from partisim.serve.queue.task import TimeStats
from partisim.sim.params import PARTICLES_KEY, SEED_KEY, STEPS_KEY

__all__ = [
    "PARAM_LABELS",
    "UNSTABLE_CV",
    "ConfigValue",
    "Params",
    "Group",
    "Pooled",
    "group_times",
    "pool",
    "Speedup",
    "speedups",
    "ratio_interval",
]

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
    "runner": "runner",
    "cpu": "CPU",
}
_NOT_CONFIG = (PARTICLES_KEY, STEPS_KEY, SEED_KEY)
#: how a run was made, besides its parameters (part of every configuration)
HOW = ("threads", "runner", "cpu")
#: coefficient of variation above which repeats are "inestable"
UNSTABLE_CV = 0.10

#: one value of a configuration: a parameter (a number) or how it ran (threads, runner, CPU)
ConfigValue: TypeAlias = int | float | str
#: a configuration, as sorted ``(name, value)`` pairs (hashable: it keys the groups)
Params: TypeAlias = tuple[tuple[str, ConfigValue], ...]


@dataclass(frozen=True)
class Group:
    """Simulation times of the successful runs of one engine at one size and one
    configuration: ``params`` holds every parameter but particles, steps and seed, and
    ``threads``, ``runner`` and ``cpu``. ``contended``: how many of the ``n`` runs were
    measured on a busy machine; ``workers``: the workers that ran them."""

    engine: str
    particles: int
    steps: int
    n: int
    mean: float
    stdev: float
    params: Params = ()
    median: float = 0.0
    minimum: float = 0.0
    contended: int = 0
    workers: tuple[str, ...] = ()

    @property
    def cv(self) -> float:
        """Coefficient of variation (stdev / mean; 0 for one run)."""
        return self.stdev / self.mean if self.mean > 0 else 0.0

    @property
    def unstable(self) -> bool:
        return self.n > 1 and self.cv > UNSTABLE_CV

    def how(self, key: str) -> ConfigValue | None:
        return dict(self.params).get(key)


def _config(params: Mapping[str, int | float], threads: int | None, runner: str | None, cpu: str | None) -> Params:
    """The configuration: every parameter but particles, steps and seed, plus how the run
    was made (threads used, runner, CPU model), as `TaskReads.time_stats` groups them."""
    how: dict[str, ConfigValue] = {"threads": threads or 1, "runner": runner or "", "cpu": cpu or ""}
    return tuple(sorted((k, v) for k, v in {**params, **how}.items() if k not in _NOT_CONFIG))


def _group(key: tuple[str, int, int, Params], times: list[float], contended: int, workers: set[str]) -> Group:
    engine, n, s, p = key
    return Group(
        engine,
        n,
        s,
        len(times),
        statistics.fmean(times),
        statistics.stdev(times) if len(times) > 1 else 0.0,
        p,
        statistics.median(times),
        min(times),
        contended,
        tuple(sorted(workers)),
    )


def group_times(tasks: Iterable[TaskView], *, contended: bool = True) -> list[Group]:
    """Successful, non-verification runs grouped by engine x particles x steps x
    configuration (the same grouping `pool` gets from SQL); ``contended`` False leaves
    out the runs measured on a busy machine."""
    found: dict[tuple[str, int, int, Params], list[float]] = defaultdict(list)
    busy: dict[tuple[str, int, int, Params], int] = defaultdict(int)
    workers: dict[tuple[str, int, int, Params], set[str]] = defaultdict(set)
    for task in tasks:
        r = task.result
        if task.status != "success" or task.verify_of or r is None:
            continue
        env = r.environment
        if env is not None and env.contended and not contended:
            continue
        cpu = env.machine.cpu_model if env is not None and env.machine is not None else None
        key = (r.engine, r.particles, r.steps, _config(task.params, r.threads, r.runner, cpu))
        found[key].append(r.simulation_time)
        busy[key] += bool(env is not None and env.contended)
        if task.worker:
            workers[key].add(task.worker)
    return [_group(key, ts, busy[key], workers[key]) for key, ts in sorted(found.items())]


@dataclass(frozen=True)
class Pooled:
    """`pool`'s answer: the groups, and the runs left out for a busy machine."""

    groups: list[Group]
    left_out: int = 0
    left_out_groups: int = 0


@dataclass
class _Acc:
    n: int = 0
    total: float = 0.0
    total_sq: float = 0.0
    times: list[float] = field(default_factory=list)
    minimum: float = math.inf
    contended: int = 0
    workers: set[str] = field(default_factory=set)


def pool(stats: Iterable[TimeStats], *, contended: bool = False) -> Pooled:
    """Per-batch sums from `TaskReads.time_stats` pooled into one group per engine x
    particles x steps x configuration (over every batch given). Runs measured on a busy
    machine are left out and counted, unless ``contended``."""
    sums: dict[tuple[str, int, int, str, int, str, str], _Acc] = {}
    left_out = 0
    left_keys = set()
    for st in stats:
        key = (st.engine, st.particles, st.steps, st.params, st.threads, st.runner, st.cpu)
        if st.contended and not contended:
            left_out += st.n
            left_keys.add(key)
            continue
        acc = sums.setdefault(key, _Acc())
        acc.n += st.n
        acc.total += st.total
        acc.total_sq += st.total_sq
        acc.times.extend(st.times)
        acc.minimum = min(acc.minimum, st.minimum)
        acc.contended += st.n if st.contended else 0
        acc.workers.update(st.workers)
    groups = []
    for (engine, particles, steps, rest, threads, runner, cpu), acc in sums.items():
        mean = acc.total / acc.n
        var = (acc.total_sq - acc.total * acc.total / acc.n) / (acc.n - 1) if acc.n > 1 else 0.0
        # equal times leave only rounding noise (possibly below zero)
        stdev = math.sqrt(var) if var > mean * mean * 1e-12 else 0.0
        groups.append(
            Group(
                engine,
                particles,
                steps,
                acc.n,
                mean,
                stdev,
                _config(json.loads(rest), threads, runner, cpu),
                statistics.median(acc.times) if acc.times else mean,
                acc.minimum if math.isfinite(acc.minimum) else mean,
                acc.contended,
                tuple(sorted(acc.workers)),
            )
        )
    groups.sort(key=lambda g: (g.engine, g.particles, g.steps, g.params))
    return Pooled(groups, left_out, len(left_keys - set(sums)))


#: two-sided 95% quantiles of Student's t for 1..30 degrees of freedom
_T95 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def _t95(df: float) -> float:
    if df >= 30:
        return 1.96 + 2.4 / df  # within 0.5% of the exact quantile from 30 on
    return _T95[max(1, int(df)) - 1]


def ratio_interval(a: Group, b: Group) -> tuple[float, float] | None:
    """95% confidence interval of ``a.mean / b.mean`` from both groups' repeats: the
    delta method on the logarithm of the ratio, with Welch's degrees of freedom. None
    when either group has fewer than two runs."""
    if a.n < 2 or b.n < 2 or a.mean <= 0 or b.mean <= 0:
        return None
    va = (a.stdev / a.mean) ** 2 / a.n  # variance of log(mean a), to first order
    vb = (b.stdev / b.mean) ** 2 / b.n
    ratio = a.mean / b.mean
    if va + vb == 0:
        return ratio, ratio
    df = (va + vb) ** 2 / ((va * va) / (a.n - 1) + (vb * vb) / (b.n - 1))
    half = _t95(df) * math.sqrt(va + vb)
    return ratio * math.exp(-half), ratio * math.exp(half)


@dataclass(frozen=True)
class Speedup:
    """cython against python at one size and configuration. ``basis`` says what makes the
    two comparable: ``"worker"`` (both on ``where``, one worker) or ``"cpu"`` (workers
    with the CPU model ``where``)."""

    particles: int
    steps: int
    python_mean: float
    cython_mean: float
    params: Params = ()
    low: float | None = None
    high: float | None = None
    basis: str = "worker"
    where: str = ""
    python_n: int = 0
    cython_n: int = 0

    @property
    def value(self) -> float:
        return self.python_mean / self.cython_mean if self.cython_mean > 0 else float("inf")


def _basis(python: Group, cython: Group) -> tuple[str, str] | None:
    """What makes two groups comparable, or None when nothing does."""
    if len(python.workers) == 1 and python.workers == cython.workers:
        return "worker", python.workers[0]
    cpu = python.how("cpu")
    if cpu and cpu == cython.how("cpu"):
        return "cpu", str(cpu)
    return None


def speedups(groups: Iterable[Group]) -> list[Speedup]:
    """cython vs python at each size and configuration where both engines ran, on the
    same worker or the same CPU model. The python engine runs on one thread: each thread
    count of cython is paired with it (the pair's ``params`` carry cython's threads)."""
    python: dict[tuple[int, int, Params], Group] = {}
    cython: list[Group] = []
    for g in groups:
        if g.engine == "python":
            python[(g.particles, g.steps, tuple(kv for kv in g.params if kv[0] != "threads"))] = g
        elif g.engine == "cython":
            cython.append(g)
    out = []
    for c in sorted(cython, key=lambda g: (g.particles, g.steps, g.params)):
        p = python.get((c.particles, c.steps, tuple(kv for kv in c.params if kv[0] != "threads")))
        basis = _basis(p, c) if p is not None else None
        if p is None or basis is None:
            continue
        interval = ratio_interval(p, c)
        out.append(
            Speedup(
                c.particles,
                c.steps,
                p.mean,
                c.mean,
                c.params,
                interval[0] if interval else None,
                interval[1] if interval else None,
                basis[0],
                basis[1],
                p.n,
                c.n,
            )
        )
    return out
