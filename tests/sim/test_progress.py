"""A run in chunks of steps (for the progress bar of `partisim run`) is the same run."""

from __future__ import annotations

import pytest
from helpers.terminal import PtySession, clean

from partisim.sim import SimParams, simulate


@pytest.mark.parametrize("engine", ["python", "numpy", "cython"])
def test_chunked_run_gives_the_same_result(engine: str) -> None:
    params = SimParams(particles=150, steps=240, seed=9, radius=6.0)
    whole = simulate(params, engine)
    seen: list[tuple[int, int]] = []
    chunked = simulate(params, engine, progress=lambda done, total, seconds: seen.append((done, total)))
    assert (chunked.particle_collisions, chunked.wall_collisions, chunked.checksum) == (
        whole.particle_collisions,
        whole.wall_collisions,
        whole.checksum,
    )
    assert chunked.kinetic_energy == whole.kinetic_energy
    assert seen[0] == (1, 240) and seen[-1] == (240, 240)  # a first step alone times the engine
    assert [d for d, _ in seen] == sorted({d for d, _ in seen})  # never twice, never back


@pytest.mark.slow
def test_long_run_shows_steps_per_second_and_time_left_on_a_terminal() -> None:
    # the bar shows only for a run expected to last over a second (`SHOW_AFTER_S` in cli/run.py):
    # 6000 python steps of 200 disks take about 3 s on an idle 2-core machine (1500 took 0.86 s)
    session = PtySession(["run", "--engine", "python", "-n", "200", "-s", "6000", "--seed", "4"], columns=80)
    try:
        session.expect("pasos/s", timeout=60)
        bar = clean(session.buffer)
        assert "quedan" in bar and "/6000" in bar
        assert session.wait(120) == 0
        out = clean(session.buffer)
    finally:
        session.close()
    expected = simulate(SimParams(particles=200, steps=6000, seed=4), "python")
    assert f"Checksum: {expected.checksum}" in out
    assert f"Colisiones partícula-partícula: {expected.particle_collisions}" in out
