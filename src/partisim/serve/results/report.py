"""The benchmark report: a PNG with simulation time vs particles (mean ± stdev over seeds
and repeats) and the cython/python speedup with its 95% confidence interval as error bar,
drawn with matplotlib (Agg). Points with runs measured on a busy machine carry a cross
(the speed-ups leave those runs out unless asked for), unstable ones (coefficient of
variation over 10%) a ring.

It draws the chart data of ``GET /api/charts`` (`ChartData`): the same groups, series,
styles and labels as the dashboard, so the two never disagree. A batch of one size gets
bars, one per engine and configuration, instead of lines of a single point; without a
python/cython pair the speedup frame is left out rather than drawn empty. Failed tasks
are named under the charts: they are not in them.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from partisim.errors import PartisimError
from partisim.files import write_atomic
from partisim.protocol import ChartData, ChartSeries, ChartSpeedup
from partisim.sim.environment import CONTENDED_LABEL, UNSTABLE_LABEL
from partisim.sim.numbers import count as plural
from partisim.sim.numbers import duration, integer, ratio, significant

__all__ = ["write_report", "ratio_text", "spaced_ticks", "footnotes", "MAX_BAR_LABELS"]

_MARKERS = {"circle": "o", "square": "s", "triangle": "^", "diamond": "D"}
#: above this many bars their values are left to the printed table
MAX_BAR_LABELS = 24
#: width of one axes in pixels (figure 13 in at 100 dpi, two axes side by side)
_AXES_PX = 500.0


def _linestyle(dash: str) -> str | tuple[int, tuple[float, ...]]:
    if not dash:
        return "-"
    return (0, tuple(float(x) for x in dash.split()))


def _count(n: float) -> str:
    return f"{int(n)}" if float(n).is_integer() else f"{n:g}"


def spaced_ticks(values: Sequence[int], *, px: float = _AXES_PX) -> list[int]:
    """The measured sizes that fit under a log axis of ``px`` pixels without their
    labels touching (about 7 px a character, plus a gap)."""
    distinct = sorted(set(values))
    if len(distinct) < 2:
        return distinct
    lo, hi = math.log10(distinct[0]), math.log10(distinct[-1])
    span = (hi - lo) * 1.1 or 1.0
    kept: list[int] = []
    for v in distinct:
        if kept:
            gap = (math.log10(v) - math.log10(kept[-1])) / span * px
            room = (len(str(v)) + len(str(kept[-1]))) * 3.5 + 10
            if gap < room:
                continue
        kept.append(v)
    return kept


def _time_chart(ax: Axes, series: Sequence[ChartSeries]) -> None:
    for line in series:
        xs = [p.particles for p in line.points]
        ys = [p.mean for p in line.points]
        # on a log axis a bar below zero is meaningless: clip the lower half
        lower = [min(p.stdev, 0.9 * p.mean) for p in line.points]
        ax.errorbar(
            xs,
            ys,
            yerr=[lower, [p.stdev for p in line.points]],
            capsize=3,
            color=line.color,
            marker=_MARKERS.get(line.marker, "D"),
            markersize=6,
            linestyle=_linestyle(line.dash),
            markerfacecolor=line.color if line.filled else "white",
            label=line.label,
        )
    _marks(ax, series)
    ax.set_xscale("log")
    ax.set_yscale("log")
    sizes = [p.particles for line in series for p in line.points]
    ticks = spaced_ticks(sizes)
    if 2 <= len(ticks) <= 8:
        ax.set_xticks(ticks, [str(n) for n in ticks])
        ax.xaxis.set_minor_formatter(NullFormatter())
    else:
        ax.xaxis.set_major_locator(LogLocator(base=10))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _count(v)))
    ax.set_xlabel("partículas")
    ax.set_ylabel("tiempo de simulación (s), media ± desv. est.")
    ax.set_title("Tiempo de simulación")
    ax.grid(True, which="major", alpha=0.35)
    ax.grid(True, which="minor", alpha=0.12)
    columns = 1 if len(series) <= 4 else 2
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=columns, frameon=False)


def _marks(ax: Axes, series: Sequence[ChartSeries]) -> None:
    """A cross on the points with runs measured on a busy machine, a ring on unstable ones."""
    busy = [(p.particles, p.mean) for line in series for p in line.points if p.contended]
    shaky = [(p.particles, p.mean) for line in series for p in line.points if p.unstable]
    if busy:
        ax.scatter(
            [x for x, _ in busy],
            [y for _, y in busy],
            marker="x",
            s=90,
            color="#000000",
            zorder=5,
            label=CONTENDED_LABEL,
        )
    if shaky:
        ax.scatter(
            [x for x, _ in shaky],
            [y for _, y in shaky],
            marker="o",
            s=180,
            facecolors="none",
            edgecolors="#777777",
            zorder=4,
            label=f"{UNSTABLE_LABEL} (CV > 10 %)",
        )


def ratio_text(value: float) -> str:
    """``1300×``, ``56,7×``, ``3,21×``: as many digits as the value needs, no exponent
    (a decimal comma, as every number a person reads)."""
    return ratio(value)


#: seconds per unit of the single-size chart's axis, the largest that keeps values >= 1
_UNITS = ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs"))


def _single_size_chart(ax: Axes, series: Sequence[ChartSeries]) -> None:
    """One size: a bar per engine (and configuration), mean ± stdev, on a linear axis in
    the unit that fits, each bar labelled with its time."""
    size = series[0].points[0].particles
    top = max(p.mean + p.stdev for line in series for p in line.points)
    scale, unit = next(((f, u) for f, u in _UNITS if top / f >= 1), _UNITS[-1])
    means = [line.points[0].mean for line in series]
    rects = ax.bar(
        range(len(series)),
        [m / scale for m in means],
        yerr=[line.points[0].stdev / scale for line in series],
        capsize=4,
        color=[line.color for line in series],
        edgecolor="white",
        width=0.6,
    )
    ax.bar_label(rects, labels=[duration(m) for m in means], fontsize=9, padding=3)
    labels = [line.label if len(series) <= 4 else line.engine for line in series]
    ax.set_xticks(range(len(series)), [textwrap.fill(t, 22) for t in labels], fontsize=8)
    ax.set_ylim(0, top / scale * 1.25)
    room = max(0.0, (3 - len(series)) / 2)  # one or two bars stay bar-wide, not axis-wide
    ax.set_xlim(-0.6 - room, len(series) - 0.4 + room)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: significant(v, 6)))
    ax.set_ylabel(f"tiempo de simulación ({unit}), media ± desv. est.")
    runs = sum(line.points[0].n for line in series)
    what = f"{plural(size, 'partícula', 'partículas')}, {plural(runs, 'ejecución', 'ejecuciones')}"
    ax.set_title(f"Tiempo de simulación ({what})")
    ax.grid(True, axis="y", alpha=0.35)


def _speedup_chart(ax: Axes, bars: Sequence[ChartSpeedup], configs: Sequence[str]) -> None:
    if not bars:
        ax.text(
            0.5, 0.5, "Sin pares python/cython\ncon el mismo tamaño", ha="center", va="center", transform=ax.transAxes
        )
        ax.set_xticks([])
        ax.set_yticks([])
        return
    sizes = sorted({b.particles for b in bars})
    configs = [c for c in configs if any(b.config == c for b in bars)]
    width = 0.8 / len(configs)
    xs = [sizes.index(b.particles) + (configs.index(b.config) - (len(configs) - 1) / 2) * width for b in bars]
    values = [b.value for b in bars]
    # log axis, bars grow from 1x: up when cython is faster, down when slower
    rects = ax.bar(
        xs,
        [v - 1.0 for v in values],
        bottom=1.0,
        width=width * 0.9,
        color=[b.color for b in bars],
        edgecolor="white",
        linewidth=0.5,
    )
    with_ci = [(x, b) for x, b in zip(xs, bars, strict=True) if b.low is not None and b.high is not None]
    if with_ci:
        ax.errorbar(
            [x for x, _ in with_ci],
            [b.value for _, b in with_ci],
            yerr=[
                [b.value - (b.low or b.value) for _, b in with_ci],
                [(b.high or b.value) - b.value for _, b in with_ci],
            ],
            fmt="none",
            ecolor="#333333",
            capsize=3,
            linewidth=1,
        )
    ax.set_yscale("log")
    low = min(*values, *(b.low for _, b in with_ci if b.low), 1.0)
    high = max(*values, *(b.high for _, b in with_ci if b.high), 1.0)
    labels = [ratio_text(v) for v in values]
    # a label goes on every bar or on none: upright when it fits the bar's width,
    # else turned (then a bar must be as wide as a line of text); too narrow: the table
    bar_px = _AXES_PX * width * 0.9 / len(sizes)
    widest = max(len(t) for t in labels) * 6.0
    rotation = 0 if widest <= bar_px else 90 if bar_px >= 13 else None
    headroom = 0.0 if rotation is None else (widest if rotation else 14.0) / 300.0  # share of the axis height
    decades = math.log10(high / low) + 0.4
    ax.set_ylim(low / 1.6, high * 10 ** (decades * headroom + 0.15))
    ax.axhline(1.0, color="grey", linewidth=1)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{significant(v, 6)}×" if v < 1e4 else f"{v:.0f}×"))
    if rotation is not None and len(bars) <= MAX_BAR_LABELS:
        ax.bar_label(rects, labels=labels, fontsize=8, padding=2, rotation=rotation)
    step = max(1, math.ceil(len(sizes) / 16))
    ax.set_xticks(
        range(0, len(sizes), step),
        [str(sizes[i]) for i in range(0, len(sizes), step)],
        rotation=45 if len(sizes) > 6 else 0,
    )
    ax.set_xlabel("partículas")
    ax.set_ylabel("aceleración (tiempo python / tiempo cython)")
    ax.set_title("Aceleración cython / python (IC 95 %, escala logarítmica)")
    ax.grid(True, axis="y", which="major", alpha=0.3)
    if len(configs) > 1:
        handles = [Patch(color=next(b.color for b in bars if b.config == c), label=c) for c in configs]
        ax.legend(handles=handles, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)


#: footnote characters per line (8 pt on a 13 in wide figure)
_FOOTNOTE_WIDTH = 190
_FOOTNOTE_LINE_IN = 0.17


#: failed tasks named one by one under the charts; past that, a count
MAX_FAILED_NOTES = 3


def failed_note(failed: int, errors: Sequence[tuple[str, str]] = ()) -> str | None:
    """The line that says the batch has failed tasks, which the charts leave out, with the
    first few (id, error); None without failures."""
    if not failed:
        return None
    text = f"Fallidas: {plural(failed, 'tarea fallida no entra', 'tareas fallidas no entran')} en las gráficas"
    named = [f"{task_id}: {error}" for task_id, error in errors[:MAX_FAILED_NOTES]]
    if named:
        text += " — " + "; ".join(named)
    if failed > len(named) and named:
        text += f"; y {integer(failed - len(named))} más (partisim results --status fallida)"
    return text


def footnotes(chart: ChartData, failed: str | None = None) -> list[str]:
    """What the PNG prints below its charts: the failed tasks, the Física line, the runs
    left out of the speedup, then each warning."""
    notes = [failed] if failed else []
    notes += [chart.physics.text] if chart.physics else []
    if chart.contended_left_out and not chart.contended_shown:
        notes.append(
            f"La aceleración deja fuera {chart.contended_left_out} ejecuciones medidas con la máquina ocupada "
            "(marcadas con una cruz en los tiempos; partisim report --contended las incluye)."
        )
    bases = sorted(
        {f"mismo worker ({b.where})" if b.basis == "worker" else f"misma CPU ({b.where})" for b in chart.speedup}
    )
    if bases:
        notes.append(f"Aceleraciones comparables por: {'; '.join(bases)}.")
    notes += [f"Aviso: {text}" for text in chart.warnings]
    return notes


def write_report(chart: ChartData, path: str | Path, *, title: str | None = None, failed: str | None = None) -> None:
    """Draw the chart data into ``path`` (PNG), with `footnotes` under the charts
    (``failed``: the `failed_note` of the batch)."""
    if not chart.series:
        raise PartisimError("no hay tareas terminadas con éxito para el informe")
    rows = max(math.ceil(len(chart.series) / 2), len({b.config for b in chart.speedup}))
    single = len({p.particles for line in chart.series for p in line.points}) == 1
    wide = 13.0 if chart.speedup else 8.0  # without a speedup pair: one chart, no empty frame
    chars = int(_FOOTNOTE_WIDTH * wide / 13.0)
    lines = [line for note in footnotes(chart, failed) for line in textwrap.wrap(note, chars)]
    foot_in = _FOOTNOTE_LINE_IN * len(lines) + (0.15 if lines else 0.0)
    height = 5.5 + 0.2 * rows + foot_in
    fig, axes = plt.subplots(1, 2 if chart.speedup else 1, figsize=(wide, height), dpi=100, squeeze=False)
    left = axes[0][0]
    try:
        if single:
            _single_size_chart(left, chart.series)
        else:
            _time_chart(left, chart.series)
        if chart.speedup:
            _speedup_chart(axes[0][1], chart.speedup, list(dict.fromkeys(line.config for line in chart.series)))
        fig.suptitle(title or "Informe de benchmarks partisim")
        if lines:
            fig.text(
                0.01,
                0.08 / height,
                "\n".join(lines),
                ha="left",
                va="bottom",
                fontsize=8,
                linespacing=1.35,
                color="#333333",
            )
        fig.tight_layout(rect=(0.0, foot_in / height, 1.0, 1.0))
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        write_atomic(path, buffer.getvalue())
    finally:
        plt.close(fig)
