"""Results of queued tasks as rows: a rich table, CSV or JSON, plus per-group statistics
and checksum comparisons for ``--verify``. Input is the `TaskView`s of ``GET /api/tasks``.

Two columns come from the hardening of the queue: ``verifiable`` (False when a worker
that is not partisim ran the task: its row shows what it reported, without checksum)
and ``duplicates`` (runs of the task on other workers besides the recorded one).
``threads`` is how many threads the run used; runs on more than one are grouped apart
(a configuration of their own, ``"threads"`` among its parameters).
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from partisim.orchestrator.serve.task import TimeStats
from partisim.orchestrator.tables import Column, FittedTable
from partisim.protocol import ChartPoint, ChartSeries, ChartSpeedup, TaskView

__all__ = [
    "COLUMNS",
    "STATUS_LABELS",
    "flatten",
    "to_csv",
    "to_json",
    "results_table",
    "Group",
    "group_times",
    "pool",
    "Speedup",
    "speedups",
    "PARAM_LABELS",
    "PALETTE",
    "ENGINE_STYLES",
    "Config",
    "ChartParts",
    "varied_dimensions",
    "chart_parts",
    "Check",
    "compare_checksums",
]

COLUMNS = (
    "id",
    "batch",
    "status",
    "engine",
    "particles",
    "steps",
    "seed",
    "worker",
    "attempts",
    "simulation_time",
    "execution_time",
    "particle_collisions",
    "wall_collisions",
    "kinetic_energy",
    "checksum",
    "error",
    "verify_of",
    "verifiable",
    "duplicates",
    "threads",
    "warnings",
)
#: the CSV cell of a task with several warnings joins them with this
WARNINGS_SEPARATOR = " | "
#: warnings the results table names in its caption; past that, a count
MAX_TABLE_WARNINGS = 5

STATUS_LABELS = {
    "queued": "en cola",
    "running": "en curso",
    "success": "éxito",
    "failed": "fallida",
    "cancelled": "cancelada",
}


def flatten(task: TaskView) -> dict[str, Any]:
    """One flat row per task (the CSV columns)."""
    params = task.params
    r = task.result or task.foreign_result  # a foreign one has no checksum, and may lack the rest
    return {
        "id": task.id,
        "batch": task.batch,
        "status": task.status,
        "engine": r.engine if r else task.benchmark,
        "particles": params.get("NUM_PARTICULAS"),
        "steps": params.get("NUM_PASOS"),
        "seed": params.get("SEMILLA"),
        "worker": task.worker,
        "attempts": task.attempts,
        "simulation_time": r.simulation_time if r else None,
        "execution_time": r.execution_time if r else None,
        "particle_collisions": r.particle_collisions if r else None,
        "wall_collisions": r.wall_collisions if r else None,
        "kinetic_energy": r.kinetic_energy if r else None,
        "checksum": task.result.checksum if task.result else None,
        "error": task.error if task.status != "success" else None,
        "verify_of": task.verify_of,
        "verifiable": task.verifiable,
        "duplicates": task.duplicates,
        "threads": task.result.threads if task.result else None,
        "warnings": WARNINGS_SEPARATOR.join(task.result.warnings) if task.result else "",
    }


def _ordered(tasks: Iterable[TaskView]) -> list[TaskView]:
    # the API answers newest first; results read better in submission order
    return sorted(tasks, key=lambda t: (t.seq, t.id))


def to_csv(tasks: Iterable[TaskView]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for task in _ordered(tasks):
        writer.writerow({k: ("" if v is None else v) for k, v in flatten(task).items()})
    return out.getvalue()


def to_json(tasks: Iterable[TaskView]) -> str:
    rows = [t.model_dump(mode="json") for t in _ordered(tasks)]
    return json.dumps(rows, indent=2, ensure_ascii=False, allow_nan=False)


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


_RESULT_COLUMNS = (
    Column("Tarea"),
    Column("Estado", wrap=12),
    Column("Motor"),
    Column("Partículas", "Part.", justify="right"),
    Column("Pasos", justify="right"),
    Column("Semilla", "Sem.", justify="right", drop=2),
    Column("Worker", drop=3),
    Column("Intentos", "Int.", justify="right", drop=5),
    Column("T. simulación (s)", "T. sim. (s)", justify="right"),
    Column("Colisiones", "Colis.", justify="right", drop=4),
    Column("Checksum", drop=6),
)


def results_table(
    tasks: Sequence[TaskView], *, checks: dict[str, Check] | None = None, title: str | None = None
) -> FittedTable:
    """A table of tasks that fits the console it is printed on (columns go, least useful
    first, rather than cutting a value); with ``checks`` a column says whether a re-run
    agreed."""
    columns = list(_RESULT_COLUMNS)
    ordered = _ordered(tasks)
    # each distinct warning gets a number; the column names it, the caption says it
    numbers: dict[str, int] = {}
    for task in ordered:
        for text in task.result.warnings if task.result else []:
            numbers.setdefault(text, len(numbers) + 1)
    if numbers:
        columns.append(Column("Aviso", "Av.", drop=1))
    duplicated = any(t.duplicates for t in tasks)
    if duplicated:
        columns.append(Column("Duplicadas", "Dup.", justify="right", drop=1))
    threaded = any(t.threads > 1 or (t.result is not None and (t.result.threads or 1) > 1) for t in tasks)
    if threaded:
        columns.append(Column("Hilos", justify="right", drop=1))
    if checks is not None:
        columns.append(Column("Verificación", wrap=14))
    rows = []
    for task in ordered:
        row = flatten(task)
        status = STATUS_LABELS.get(row["status"], str(row["status"]))
        if row["status"] == "failed" and row["error"]:
            status += f": {row['error']}"
        cells = [
            row["id"],
            status,
            row["engine"],
            _fmt(row["particles"]),
            _fmt(row["steps"]),
            _fmt(row["seed"]),
            _fmt(row["worker"]),
            _fmt(row["attempts"]),
            _fmt(row["simulation_time"]),
            _fmt(row["particle_collisions"]),
            (row["checksum"] or "—")[:12] if row["verifiable"] else "no verificable",
        ]
        if numbers:
            marks = [numbers[t] for t in task.result.warnings] if task.result else []
            cells.append(",".join(str(n) if n <= MAX_TABLE_WARNINGS else "+" for n in marks) or "—")
        if duplicated:
            cells.append(str(row["duplicates"]) if row["duplicates"] else "—")
        if threaded:  # the threads used once it ran; those asked for until then
            cells.append(_fmt(row["threads"]) if task.result else str(task.threads))
        if checks is not None:
            check = checks.get(row["id"])
            cells.append("—" if check is None else check.label)
        rows.append(cells)
    notes = [f"Aviso {n}: {text}" for text, n in numbers.items() if n <= MAX_TABLE_WARNINGS]
    if len(numbers) > MAX_TABLE_WARNINGS:
        notes.append(
            f"Aviso +: {len(numbers) - MAX_TABLE_WARNINGS} avisos más; vea la columna warnings de --format csv"
        )
    return FittedTable(
        columns, rows, title=title or f"Resultados ({len(tasks)} tareas)", caption="\n".join(notes) or None
    )


# -- statistics -----------------------------------------------------------------------

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
_NOT_CONFIG = ("NUM_PARTICULAS", "NUM_PASOS", "SEMILLA")

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


def _other_params(params: dict[str, Any], threads: int | None = None) -> Params:
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


# -- how the charts draw the groups (the dashboard and the PNG report alike) --------------

#: Okabe & Ito's colour-blind-safe palette, without its yellow (too pale on white)
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#000000")
#: per engine: colour (when only one configuration is shown), marker and line dash
ENGINE_STYLES = {
    "python": ("#0072B2", "circle", ""),
    "numpy": ("#009E73", "square", "7 3"),
    "cython": ("#D55E00", "triangle", "2 2"),
}
_ENGINE_ORDER = {name: i for i, name in enumerate(ENGINE_STYLES)}


def _number(value: Any) -> str:
    """A parameter value as the Spanish user reads it: 0,05 · 800 · 10000."""
    if isinstance(value, float):
        return f"{value:g}".replace(".", ",")
    return str(value)


@dataclass(frozen=True)
class Config:
    """What tells two lines of one engine apart: the steps and the other parameters."""

    steps: int
    params: Params

    def shown(self, varied: Sequence[str]) -> dict[str, Any]:
        """The parameters (besides steps) that vary among the results shown."""
        return {k: v for k, v in self.params if k in varied}

    def label(self, varied: Sequence[str]) -> str:
        parts = []
        if "NUM_PASOS" in varied:
            parts.append(f"{_number(self.steps)} pasos")
        for key, value in self.params:
            if key in varied:
                parts.append(f"{PARAM_LABELS.get(key, key)} {_number(value)}")
        return " · ".join(parts)


@dataclass(frozen=True)
class ChartParts:
    varied: list[str]
    series: list[ChartSeries]
    speedup: list[ChartSpeedup]


def varied_dimensions(groups: Sequence[Group]) -> list[str]:
    """Steps and other parameters with more than one value among ``groups`` (API names)."""
    values: dict[str, set[str]] = defaultdict(set)
    for g in groups:
        values["NUM_PASOS"].add(str(g.steps))
        for key, value in g.params:
            values[key].add(json.dumps(value))
    keys = [k for k in values if k in PARAM_LABELS] + sorted(k for k in values if k not in PARAM_LABELS)
    return sorted((k for k in keys if len(values[k]) > 1), key=lambda k: (k != "NUM_PASOS", k))


def chart_parts(groups: Sequence[Group]) -> ChartParts:
    """Lines (one per engine x configuration) and speedup bars, each with a style of its
    own: with one configuration the colour says the engine; with several, the colour
    says the configuration and the marker and dash say the engine. Markers never
    depend on colour alone, so the chart reads in grey too."""
    varied = varied_dimensions(groups)
    configs = sorted({Config(g.steps, g.params) for g in groups}, key=lambda c: (c.steps, c.params))
    index = {c: i for i, c in enumerate(configs)}
    several = len(configs) > 1

    def colour(config: Config, engine: str) -> tuple[str, bool]:
        if not several:
            return ENGINE_STYLES.get(engine, ("#555555", "", ""))[0], True
        i = index[config]
        # past the palette the colours repeat with hollow markers
        return PALETTE[i % len(PALETTE)], (i // len(PALETTE)) % 2 == 0

    lines: dict[tuple[Config, str], list[Group]] = defaultdict(list)
    for g in groups:
        lines[(Config(g.steps, g.params), g.engine)].append(g)
    series = []
    for (config, engine), items in sorted(
        lines.items(), key=lambda kv: (index[kv[0][0]], _ENGINE_ORDER.get(kv[0][1], 99), kv[0][1])
    ):
        items.sort(key=lambda g: g.particles)
        label = config.label(varied)
        color, filled = colour(config, engine)
        _, marker, dash = ENGINE_STYLES.get(engine, ("", "diamond", "1 3"))
        series.append(
            ChartSeries(
                key=json.dumps([engine, config.steps, config.shown(varied)]),
                engine=engine,
                steps=config.steps,
                params=config.shown(varied),
                config=label,
                label=f"{engine} · {label}" if label else engine,
                color=color,
                marker=marker,
                dash=dash,
                filled=filled,
                points=[ChartPoint(particles=g.particles, mean=g.mean, stdev=g.stdev, n=g.n) for g in items],
            )
        )
    bars = []
    for up in sorted(speedups(groups), key=lambda u: (u.particles, index[Config(u.steps, u.params)])):
        if not (up.cython_mean > 0 and math.isfinite(up.value)):
            continue
        config = Config(up.steps, up.params)
        bars.append(
            ChartSpeedup(
                particles=up.particles,
                steps=up.steps,
                params=config.shown(varied),
                config=config.label(varied),
                color=colour(config, "cython")[0],
                python=up.python_mean,
                cython=up.cython_mean,
                value=up.value,
            )
        )
    return ChartParts(varied, series, bars)


# -- verification ---------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """A task run again on another worker: did the checksum agree?"""

    original_id: str
    verify_id: str
    original_worker: str | None
    verify_worker: str | None
    original_checksum: str | None
    verify_checksum: str | None
    verify_status: str

    @property
    def match(self) -> bool | None:
        if self.verify_status != "success" or not self.original_checksum or not self.verify_checksum:
            return None
        return self.original_checksum == self.verify_checksum

    @property
    def label(self) -> str:
        if self.match is None:
            return f"sin verificar ({STATUS_LABELS.get(self.verify_status, self.verify_status)})"
        where = f"{self.original_worker} vs {self.verify_worker}"
        return f"coincide ({where})" if self.match else f"¡NO COINCIDE! ({where})"


def compare_checksums(originals: dict[str, TaskView], reruns: Iterable[TaskView]) -> list[Check]:
    """Pair each re-run (``verify_of``) with its original task."""
    checks = []
    for rerun in reruns:
        original = originals.get(rerun.verify_of or "")
        if original is None:
            continue
        checks.append(
            Check(
                original_id=original.id,
                verify_id=rerun.id,
                original_worker=original.worker,
                verify_worker=rerun.worker,
                original_checksum=original.result.checksum if original.result else None,
                verify_checksum=rerun.result.checksum if rerun.result else None,
                verify_status=rerun.status,
            )
        )
    return checks
