"""The engines' broad phases against a deliberately simple O(n^2) rule."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from partisim.sim.engines import _cython, numpy_
from partisim.sim.partition import candidate_pairs, grid_shape


def brute_force_pairs(x: list[float], y: list[float], d2: float) -> list[tuple[int, int]]:
    out = []
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            dx = x[i] - x[j]
            dy = y[i] - y[j]
            if dx * dx + dy * dy < d2:
                out.append((i, j))
    return out


def random_state(n: int, width: float, height: float, radius: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = radius + rng.random(n) * (width - 2 * radius)
    y = radius + rng.random(n) * (height - 2 * radius)
    return x, y


def all_broad_phases(x: np.ndarray, y: np.ndarray, width: float, height: float, radius: float):
    grid = grid_shape(width, height, radius, len(x))
    d2 = (2.0 * radius) ** 2
    py = candidate_pairs(x.tolist(), y.tolist(), grid, d2)
    ni, nj = numpy_.candidate_pairs(x, y, grid, d2)
    ci, cj = _cython.candidate_pairs(x, y, tuple(grid), d2)
    return py, list(zip(ni.tolist(), nj.tolist(), strict=True)), list(zip(ci.tolist(), cj.tolist(), strict=True))


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 300),
    width=st.floats(30.0, 2000.0),
    height=st.floats(30.0, 2000.0),
    radius=st.floats(0.5, 14.0),
    seed=st.integers(0, 2**32),
)
def test_broad_phases_match_brute_force(n, width, height, radius, seed) -> None:
    x, y = random_state(n, width, height, radius, seed)
    expected = brute_force_pairs(x.tolist(), y.tolist(), (2.0 * radius) ** 2)
    for got in all_broad_phases(x, y, width, height, radius):
        assert got == expected


def test_touching_exactly_at_cell_boundaries() -> None:
    # Particles on a lattice of pitch just under a diameter, aligned with cell edges.
    radius, width, height = 5.0, 400.0, 300.0
    grid = grid_shape(width, height, radius, 400)
    xs = np.array([k * grid.cell_w for k in range(1, 20)] * 3) - 1e-12
    ys = np.repeat([100.0, 100.0 + 9.999999, 100.0 + 2 * 9.999999], 19)
    expected = brute_force_pairs(xs.tolist(), ys.tolist(), 100.0)
    for got in all_broad_phases(xs, ys, width, height, radius):
        assert got == expected
    assert expected, "the lattice must produce touching pairs"


@pytest.mark.parametrize("n", [1, 10, 1000, 100_000])
def test_grid_memory_is_linear_in_particles(n: int) -> None:
    ncx, ncy, cw, ch = grid_shape(1e9, 1e9, 0.5, n)
    assert ncx * ncy <= 2 * n + 16
    assert cw >= 1.0 and ch >= 1.0
