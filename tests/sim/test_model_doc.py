"""docs/modelo.md is the contract: one step written from its formulas equals the engines bit for bit."""

from __future__ import annotations

import hashlib
import math
import struct
from pathlib import Path

import numpy as np
import pytest

from partisim.sim import SimParams, get_engine
from partisim.sim.state import checksum, initial_state

DOC = Path(__file__).resolve().parents[2] / "docs" / "modelo.md"

# Every line below is copied from docs/modelo.md; the replay uses exactly these expressions.
FORMULAS = [
    "rng = numpy.random.default_rng(seed)",
    "u = rng.random((n, 2))",
    "x = radius + u[:,0]*(width - 2*radius)",
    "y = radius + u[:,1]*(height - 2*radius)",
    "w = rng.random((n, 2))",
    "vx = (w[:,0] - 0.5)*(2*max_speed)",
    "vy = (w[:,1] - 0.5)*(2*max_speed)",
    "x = x + vx*dt",
    "y = y + vy*dt",
    "if x - r < 0:",
    "elif x + r > width:",
    "x = width - r",
    "vx = -(ew*vx)",
    "if y - r < 0:",
    "elif y + r > height:",
    "y = height - r",
    "vy = -(ew*vy)",
    "dx*dx + dy*dy < d2",
    "dist2 = dx*dx + dy*dy",
    "if dist2 >= d2 or dist2 == 0:",
    "dist = sqrt(dist2)",
    "nx = dx/dist",
    "ny = dy/dist",
    "vn = (vx[i]-vx[j])*nx + (vy[i]-vy[j])*ny",
    "if vn >= 0:",
    "jn = -(1.0 + ep)*vn*0.5",
    "c = 0.5*(d - dist)",
    'struct.pack("<4d", x[k], y[k], vx[k], vy[k])',
]

# 8 disks of radius 5 in 60 x 50 with dt = 0.5: the first step has 3 collisions and 3 wall hits
CASE = SimParams(
    particles=8,
    steps=1,
    width=60.0,
    height=50.0,
    radius=5.0,
    dt=0.5,
    max_speed=20.0,
    seed=8,
    wall_restitution=0.8,
    particle_restitution=0.9,
)


def test_the_formulas_are_in_the_document() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = [f for f in FORMULAS if f not in text]
    assert not missing, f"docs/modelo.md no longer states: {missing}"


def initial_from_doc(p: SimParams) -> tuple[list[float], list[float], list[float], list[float]]:
    n, seed, radius, width, height, max_speed = p.particles, p.seed, p.radius, p.width, p.height, p.max_speed
    rng = np.random.default_rng(seed)
    u = rng.random((n, 2))
    x = radius + u[:, 0] * (width - 2 * radius)  # spelled as in the document
    y = radius + u[:, 1] * (height - 2 * radius)
    w = rng.random((n, 2))
    vx = (w[:, 0] - 0.5) * (2 * max_speed)
    vy = (w[:, 1] - 0.5) * (2 * max_speed)
    return x.tolist(), y.tolist(), vx.tolist(), vy.tolist()


def step_from_doc(p: SimParams, x: list[float], y: list[float], vx: list[float], vy: list[float]) -> tuple[int, int]:
    """One step, phase by phase, as docs/modelo.md §4 writes it (plain floats, naive pair search)."""
    n, dt, width, height = p.particles, p.dt, p.width, p.height
    r, ew, ep = p.radius, p.wall_restitution, p.particle_restitution
    d = 2.0 * r
    d2 = d * d
    sqrt = math.sqrt
    for k in range(n):  # phase 1
        x[k] = x[k] + vx[k] * dt
        y[k] = y[k] + vy[k] * dt
    wall_collisions = 0
    for k in range(n):  # phase 2
        touched = False
        if x[k] - r < 0:
            x[k] = r
            vx[k] = -(ew * vx[k])
            touched = True
        elif x[k] + r > width:
            x[k] = width - r
            vx[k] = -(ew * vx[k])
            touched = True
        if y[k] - r < 0:
            y[k] = r
            vy[k] = -(ew * vy[k])
            touched = True
        elif y[k] + r > height:
            y[k] = height - r
            vy[k] = -(ew * vy[k])
            touched = True
        wall_collisions += touched
    # phase 3: candidates fixed from the post-wall positions, then ascending (i, j) on current values
    candidates = [
        (i, j)
        for i in range(n)
        for j in range(i + 1, n)
        if (x[i] - x[j]) * (x[i] - x[j]) + (y[i] - y[j]) * (y[i] - y[j]) < d2
    ]
    particle_collisions = 0
    for i, j in candidates:
        dx = x[i] - x[j]
        dy = y[i] - y[j]
        dist2 = dx * dx + dy * dy
        if dist2 >= d2 or dist2 == 0:
            continue
        dist = sqrt(dist2)
        nx = dx / dist
        ny = dy / dist
        vn = (vx[i] - vx[j]) * nx + (vy[i] - vy[j]) * ny
        if vn >= 0:
            continue
        particle_collisions += 1
        jn = -(1.0 + ep) * vn * 0.5
        vx[i] += jn * nx
        vy[i] += jn * ny
        vx[j] -= jn * nx
        vy[j] -= jn * ny
        c = 0.5 * (d - dist)
        x[i] += c * nx
        y[i] += c * ny
        x[j] -= c * nx
        y[j] -= c * ny
    return particle_collisions, wall_collisions


def checksum_from_doc(x: list[float], y: list[float], vx: list[float], vy: list[float]) -> str:
    data = b"".join(struct.pack("<4d", x[k], y[k], vx[k], vy[k]) for k in range(len(x)))
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("engine", ["python", "cython"])
def test_one_step_from_the_document_equals_the_engines(engine: str) -> None:
    x, y, vx, vy = initial_from_doc(CASE)
    engine_state = initial_state(CASE)
    assert np.column_stack((x, y, vx, vy)).tobytes() == np.column_stack(engine_state).tobytes()

    counts = step_from_doc(CASE, x, y, vx, vy)
    assert counts[0] >= 1 and counts[1] >= 1  # the case exercises both kinds of collision
    assert get_engine(engine)(CASE, engine_state) == counts
    for mine, theirs in zip((x, y, vx, vy), engine_state, strict=True):
        assert np.asarray(mine, dtype="<f8").tobytes() == np.asarray(theirs, dtype="<f8").tobytes()
    assert checksum_from_doc(x, y, vx, vy) == checksum(engine_state)
