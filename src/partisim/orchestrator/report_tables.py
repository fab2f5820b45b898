"""The text tables of ``partisim report``: simulation times per engine, size and
configuration (mean ± stdev, median, minimum, "inestable" when the coefficient of
variation exceeds 10%), and the cython/python speed-ups with their 95% confidence
interval and what makes each pair comparable (one worker, or one CPU model)."""

from __future__ import annotations

from partisim.orchestrator.tables import Column, FittedTable
from partisim.protocol import ChartData, ChartSpeedup
from partisim.sim.numbers import decimal, duration, ratio

__all__ = ["time_table", "speedup_table", "contended_note", "CONTENDED_MARK"]

#: the mark of a value measured on a busy machine (shown only when asked for)
CONTENDED_MARK = "ocupada"


def _interval(up: ChartSpeedup) -> str:
    if up.low is None or up.high is None:
        return "— (menos de 2 ejecuciones)"
    return f"{decimal(up.low, 2)}–{decimal(up.high, 2)}×"


def _basis(up: ChartSpeedup) -> str:
    return f"mismo worker ({up.where})" if up.basis == "worker" else f"misma CPU ({up.where})"


def time_table(chart: ChartData) -> FittedTable:
    several = any(line.config for line in chart.series)
    columns = [
        Column("Motor"),
        Column("Configuración", "Config.", wrap=10),
        Column("Partículas", "Part.", justify="right"),
        Column("Ejecuciones", "Ejec.", justify="right"),
        Column("Media", justify="right"),
        Column("Desv. est.", "Desv.", justify="right"),
        Column("Mediana", "Med.", justify="right", drop=2),
        Column("Mínimo", "Mín.", justify="right", drop=3),
        Column("Estado", wrap=12, drop=1),
    ]
    rows = []
    for line in chart.series:
        for p in line.points:
            marks = []
            if p.unstable:
                marks.append(f"inestable (CV {p.cv:.0%})")
            if p.contended:
                marks.append(f"{p.contended} {CONTENDED_MARK}")
            rows.append(
                [
                    line.engine,
                    line.config,
                    str(p.particles),
                    str(p.n),
                    duration(p.mean),
                    duration(p.stdev),
                    duration(p.median),
                    duration(p.minimum),
                    ", ".join(marks) or "estable",
                ]
            )
    if not several:
        columns.pop(1)
        rows = [r[:1] + r[2:] for r in rows]
    return FittedTable(columns, rows, title="Tiempo de simulación", caption=contended_note(chart))


def speedup_table(chart: ChartData) -> FittedTable:
    several = any(up.config for up in chart.speedup)
    columns = [
        Column("Partículas", "Part.", justify="right"),
        Column("Configuración", "Config.", wrap=10),
        Column("Python", justify="right"),
        Column("Cython", justify="right"),
        Column("Aceleración", "Acel.", justify="right"),
        Column("IC 95 %", justify="right", drop=1),
        Column("Comparable por", "Base", wrap=14, drop=2),
    ]
    rows = [
        [
            str(u.particles),
            u.config,
            duration(u.python),
            duration(u.cython),
            ratio(u.value),
            _interval(u),
            _basis(u),
        ]
        for u in chart.speedup
    ]
    if not several:
        columns.pop(1)
        rows = [r[:1] + r[2:] for r in rows]
    return FittedTable(columns, rows, title="Aceleración cython / python")


def contended_note(chart: ChartData) -> str | None:
    """What the tables did with the runs measured on a busy machine."""
    busy = sum(p.contended for line in chart.series for p in line.points)
    if not busy:
        return None
    text = f"{busy} ejecuciones medidas con la máquina ocupada: en los tiempos, marcadas «{CONTENDED_MARK}»; "
    if chart.contended_shown:
        return text + "incluidas también en la aceleración (--contended)."
    return text + f"la aceleración deja fuera {chart.contended_left_out} (use --contended para incluirlas)."
