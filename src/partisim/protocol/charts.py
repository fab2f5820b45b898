"""Chart data (``GET /api/charts``): aggregates, never raw results."""

from __future__ import annotations

from typing import Any

from partisim.protocol.base import Finite, Wire

__all__ = ["ChartPoint", "ChartSeries", "ChartSpeedup", "ChartBatch", "ChartPhysics", "ChartData"]

# -- chart data (``GET /api/charts``): aggregates, never raw results ------------------


class ChartPoint(Wire):
    """Mean simulation time of one configuration at one size (``n`` runs)."""

    particles: int
    mean: Finite
    stdev: Finite
    n: int
    median: Finite | None = None
    minimum: Finite | None = None
    #: coefficient of variation; above 10% the point is "inestable"
    cv: Finite = 0.0
    unstable: bool = False
    #: runs among ``n`` measured on a busy machine (marked on the chart)
    contended: int = 0


class ChartSeries(Wire):
    """One line of the time chart: an engine at one configuration (steps and every other
    parameter that varies among the results shown), with its own drawing style."""

    key: str
    engine: str
    steps: int
    params: dict[str, Any] = {}
    config: str = ""
    label: str
    color: str
    marker: str
    dash: str
    filled: bool = True
    points: list[ChartPoint]


class ChartSpeedup(Wire):
    """cython vs python at one size and configuration (both engines ran it)."""

    particles: int
    steps: int
    params: dict[str, Any] = {}
    config: str = ""
    color: str
    python: Finite
    cython: Finite
    value: Finite
    #: 95% confidence interval of ``value`` (None with fewer than two runs of either engine)
    low: Finite | None = None
    high: Finite | None = None
    #: what makes the pair comparable: "worker" (one worker, ``where``) or "cpu" (its model)
    basis: str = "worker"
    where: str = ""


class ChartBatch(Wire):
    """A batch the charts can show: its successful (non-verification) results."""

    batch: str
    created_at: Finite
    results: int
    pending: int


class ChartPhysics(Wire):
    """The "Física" line of the results shown: measured pair collisions over kinetic
    theory (``ratio``) and what the time step lets through (``expected``), or, with
    ``shown`` False, ``text`` saying why not (docs/fisica.md)."""

    text: str
    shown: bool
    ratio: Finite | None = None
    expected: Finite | None = None
    tasks: int = 0
    collisions: int = 0
    left_out: int = 0


class ChartData(Wire):
    """``GET /api/charts?batch=``: what is drawn (``batch`` None: every batch), the
    batches to choose from (newest first), the dimensions that vary, lines and bars;
    the Física line and the distinct warnings the results carry."""

    success: int
    batch: str | None = None
    latest: str | None = None
    batches: list[ChartBatch] = []
    varied: list[str] = []
    series: list[ChartSeries] = []
    speedup: list[ChartSpeedup] = []
    physics: ChartPhysics | None = None
    warnings: list[str] = []
    #: runs measured on a busy machine left out of the speed-ups (and whether they are shown)
    contended_left_out: int = 0
    contended_shown: bool = False
