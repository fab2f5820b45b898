"""The benchmark report: a PNG with simulation time vs particles per engine (mean ± stdev
over seeds and repeats) and the cython/python speedup, drawn with matplotlib (Agg).
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt
from matplotlib.ticker import NullFormatter

from partisim.errors import PartisimError
from partisim.files import write_atomic
from partisim.orchestrator.serve.results import Group, group_times, speedups
from partisim.protocol import TaskView

__all__ = ["write_report"]

_COLORS = {"python": "#1f77b4", "numpy": "#2ca02c", "cython": "#d62728"}


def write_report(tasks: Iterable[TaskView], path: str | Path, *, title: str | None = None) -> list[Group]:
    """Draw the report of the given tasks into ``path`` (PNG); returns the groups."""
    groups = group_times(list(tasks))
    if not groups:
        raise PartisimError("no hay tareas terminadas con éxito para el informe")
    ups = speedups(groups)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5), dpi=100)
    try:
        series: dict[tuple[str, int], list[Group]] = defaultdict(list)
        for g in groups:
            series[(g.engine, g.steps)].append(g)
        several_steps = len({g.steps for g in groups}) > 1
        for (engine, steps), items in sorted(series.items()):
            items.sort(key=lambda g: g.particles)
            label = f"{engine} ({steps} pasos)" if several_steps else engine
            # on a log axis a bar below zero is meaningless: clip the lower half
            lower = [min(g.stdev, 0.9 * g.mean) for g in items]
            left.errorbar(
                [g.particles for g in items], [g.mean for g in items],
                yerr=[lower, [g.stdev for g in items]], marker="o", capsize=4,
                color=_COLORS.get(engine), label=label,
            )
        left.set_xscale("log")
        left.set_yscale("log")
        sizes = sorted({g.particles for g in groups})
        left.set_xticks(sizes, [str(n) for n in sizes])
        left.xaxis.set_minor_formatter(NullFormatter())
        left.set_xlabel("partículas")
        left.set_ylabel("tiempo de simulación (s), media ± desv. est.")
        left.set_title("Tiempo de simulación por motor")
        left.grid(True, which="both", alpha=0.3)
        left.legend()

        if ups:
            labels = [f"{u.particles}" + (f"\n{u.steps} pasos" if several_steps else "") for u in ups]
            bars = right.bar(range(len(ups)), [u.value for u in ups], color="#d62728")
            right.set_xticks(range(len(ups)), labels)
            right.bar_label(bars, labels=[f"{u.value:.1f}×" for u in ups])
            right.axhline(1.0, color="grey", linewidth=1)
            right.set_xlabel("partículas")
            right.set_ylabel("aceleración (tiempo python / tiempo cython)")
        else:
            right.text(0.5, 0.5, "Sin pares python/cython\ncon el mismo tamaño", ha="center",
                       va="center", transform=right.transAxes)
            right.set_xticks([])
            right.set_yticks([])
        right.set_title("Aceleración cython / python")
        fig.suptitle(title or "Informe de benchmarks partisim")
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        write_atomic(path, buffer.getvalue())
    finally:
        plt.close(fig)
    return groups
