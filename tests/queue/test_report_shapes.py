"""The report PNG chooses a chart that suits its data (issue 24 §3): one size gets bars,
no speedup pair leaves no empty frame, and failed tasks are named under the charts."""

from __future__ import annotations

import struct
from pathlib import Path

from partisim.protocol import ChartData, ChartPoint, ChartSeries, ChartSpeedup
from partisim.serve.results.report import failed_note, footnotes, ratio_text, write_report


def _series(engine: str, sizes: list[int], color: str) -> ChartSeries:
    return ChartSeries(
        key=engine,
        engine=engine,
        steps=200,
        label=f"{engine} · 200 pasos",
        color=color,
        marker="circle",
        dash="",
        points=[ChartPoint(particles=n, mean=0.001 * n, stdev=0.0001 * n, n=3) for n in sizes],
    )


def _width(png: Path) -> int:
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    return int(struct.unpack(">I", data[16:20])[0])


def test_without_a_speedup_pair_the_report_is_one_chart_wide(tmp_path: Path) -> None:
    one = tmp_path / "uno.png"
    write_report(ChartData(success=3, series=[_series("python", [400], "#0072b2")]), one)
    both = tmp_path / "dos.png"
    chart = ChartData(
        success=6,
        series=[_series("python", [400], "#0072b2"), _series("cython", [400], "#d55e00")],
        speedup=[ChartSpeedup(particles=400, steps=200, python=0.4, cython=0.01, value=40.0, color="#d55e00")],
    )
    write_report(chart, both)
    assert _width(one) == 800 and _width(both) == 1300  # no empty speedup frame beside one chart


def test_failed_tasks_are_named_under_the_charts() -> None:
    note = failed_note(5, [("t-1", "tiempo agotado"), ("t-2", "HTTP 422: demasiadas partículas")])
    assert note is not None
    assert note.startswith("Fallidas: 5 tareas fallidas no entran en las gráficas — t-1: tiempo agotado; t-2:")
    assert note.endswith("y 3 más (partisim results --status fallida)")
    assert failed_note(1, [("t-9", "x")]) == "Fallidas: 1 tarea fallida no entra en las gráficas — t-9: x"
    assert failed_note(0) is None
    assert footnotes(ChartData(success=1), note)[0] == note


def test_speedups_are_written_with_a_decimal_comma() -> None:
    assert [ratio_text(v) for v in (1300.0, 56.74, 3.214)] == ["1300×", "56,7×", "3,21×"]
