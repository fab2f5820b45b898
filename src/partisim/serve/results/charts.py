"""How the charts draw the groups, the dashboard and the PNG report alike: one line per
engine x configuration and one speed-up bar per size, each with a style of its own."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from partisim.protocol import ChartPoint, ChartSeries, ChartSpeedup
from partisim.serve.results.statistics import PARAM_LABELS, ConfigValue, Group, Params, speedups

__all__ = ["PALETTE", "ENGINE_STYLES", "LineConfig", "ChartParts", "varied_dimensions", "chart_parts"]

#: Okabe & Ito's colour-blind-safe palette, without its yellow (too pale on white)
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#000000")
#: per engine: colour (when only one configuration is shown), marker and line dash
ENGINE_STYLES = {
    "python": ("#0072B2", "circle", ""),
    "numpy": ("#009E73", "square", "7 3"),
    "cython": ("#D55E00", "triangle", "2 2"),
}
_ENGINE_ORDER = {name: i for i, name in enumerate(ENGINE_STYLES)}


def _number(value: object) -> str:
    """A parameter value as the Spanish user reads it: 0,05 · 800 · 10000."""
    if isinstance(value, float):
        return f"{value:g}".replace(".", ",")
    return str(value)


@dataclass(frozen=True)
class LineConfig:
    """What tells two lines of one engine apart: the steps and the other parameters."""

    steps: int
    params: Params

    def shown(self, varied: Sequence[str]) -> dict[str, ConfigValue]:
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


def chart_parts(groups: Sequence[Group], speedup_groups: Sequence[Group] | None = None) -> ChartParts:
    """Lines (one per engine x configuration) and speedup bars, each with a style of its
    own: with one configuration the colour says the engine; with several, the colour
    says the configuration and the marker and dash say the engine. Markers never
    depend on colour alone, so the chart reads in grey too. The bars come from
    ``speedup_groups`` when given (the groups without the runs on a busy machine)."""
    varied = varied_dimensions(groups)
    configs = sorted({LineConfig(g.steps, g.params) for g in groups}, key=lambda c: (c.steps, c.params))
    index = {c: i for i, c in enumerate(configs)}
    several = len(configs) > 1

    def colour(config: LineConfig, engine: str) -> tuple[str, bool]:
        if not several:
            return ENGINE_STYLES.get(engine, ("#555555", "", ""))[0], True
        i = index[config]
        # past the palette the colours repeat with hollow markers
        return PALETTE[i % len(PALETTE)], (i // len(PALETTE)) % 2 == 0

    lines: dict[tuple[LineConfig, str], list[Group]] = defaultdict(list)
    for g in groups:
        lines[(LineConfig(g.steps, g.params), g.engine)].append(g)
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
                points=[
                    ChartPoint(
                        particles=g.particles,
                        mean=g.mean,
                        stdev=g.stdev,
                        n=g.n,
                        median=g.median,
                        minimum=g.minimum,
                        cv=g.cv,
                        unstable=g.unstable,
                        contended=g.contended,
                    )
                    for g in items
                ],
            )
        )
    bars = []
    for up in sorted(
        speedups(groups if speedup_groups is None else speedup_groups),
        key=lambda u: (u.particles, index[LineConfig(u.steps, u.params)]),
    ):
        if not (up.cython_mean > 0 and math.isfinite(up.value)):
            continue
        config = LineConfig(up.steps, up.params)
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
                low=up.low,
                high=up.high,
                basis=up.basis,
                where=up.where,
            )
        )
    return ChartParts(varied, series, bars)
