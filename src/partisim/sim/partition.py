"""Broad phase: which pairs may touch (docs/modelo.md, phase 3).

A uniform grid whose cells are at least one diameter wide, so touching
particles always share a cell or sit in neighbouring cells. The number of cells
is capped at a few per particle: memory stays O(n) whatever the box size.
Every engine uses `grid_shape`; `candidate_pairs` is the pure-Python broad
phase (the NumPy and Cython engines have their own, tested against it).
"""

from __future__ import annotations

import math
from typing import NamedTuple

__all__ = ["Grid", "grid_shape", "candidate_pairs", "CELLS_PER_PARTICLE"]

#: Upper bound on cells per particle (plus a small constant for tiny n).
CELLS_PER_PARTICLE = 2


class Grid(NamedTuple):
    ncx: int
    ncy: int
    cell_w: float
    cell_h: float


def grid_shape(width: float, height: float, radius: float, n: int) -> Grid:
    """Cells of side >= 2*radius, at most CELLS_PER_PARTICLE*n + 16 of them."""
    # A hair wider than a diameter, so rounding in x / cell_w can never put two
    # touching particles two cells apart.
    side = 2.0 * radius * (1.0 + 1e-6)
    max_cells = CELLS_PER_PARTICLE * n + 16
    if (width / side) * (height / side) > max_cells:
        side = math.sqrt(width * height / max_cells)
    ncx = max(1, min(int(width / side), max_cells))
    ncy = max(1, min(int(height / side), max_cells))
    return Grid(ncx, ncy, width / ncx, height / ncy)


def cell_of(v: float, size: float, count: int) -> int:
    c = int(v / size)
    return 0 if c < 0 else (count - 1 if c >= count else c)


def candidate_pairs(x: list[float], y: list[float], grid: Grid, d2: float) -> list[tuple[int, int]]:
    """Every pair i < j with (x[i]-x[j])^2 + (y[i]-y[j])^2 < d2, in ascending order."""
    ncx, ncy, cw, ch = grid
    n = len(x)
    cx = [cell_of(x[i], cw, ncx) for i in range(n)]
    cy = [cell_of(y[i], ch, ncy) for i in range(n)]
    cells: dict[int, list[int]] = {}
    for i in range(n):
        cells.setdefault(cy[i] * ncx + cx[i], []).append(i)
    pairs: list[tuple[int, int]] = []
    for i in range(n):
        xi, yi = x[i], y[i]
        found: list[int] = []
        for gy in range(max(cy[i] - 1, 0), min(cy[i] + 2, ncy)):
            for gx in range(max(cx[i] - 1, 0), min(cx[i] + 2, ncx)):
                for j in cells.get(gy * ncx + gx, ()):
                    if j > i:
                        dx = xi - x[j]
                        dy = yi - y[j]
                        if dx * dx + dy * dy < d2:
                            found.append(j)
        found.sort()
        pairs.extend((i, j) for j in found)
    return pairs
