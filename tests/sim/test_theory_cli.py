"""`partisim theory` and the coarse-step warning of `partisim run`: in this process
(`helpers.cli.run_cli`), and the human output of `theory` in a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers.cli import run_cli

from partisim.sim import SimParams, predict, simulate

ROOT = Path(__file__).resolve().parents[2]
ELASTIC = ["--particle-restitution", "1", "--wall-restitution", "1"]


def partisim(*args: str) -> subprocess.CompletedProcess[str]:
    """``partisim *args`` in this process."""
    return run_cli(*args, cwd=ROOT)


def partisim_process(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "partisim", *args], capture_output=True, text=True, timeout=120, cwd=ROOT, check=False
    )


def _refuse(constant: str) -> Any:
    raise AssertionError(f"JSON no estricto: {constant}")


def strict_json(text: str) -> dict[str, Any]:
    """Exactly one JSON object, with no NaN or Infinity."""
    return json.loads(text, parse_constant=_refuse)


def test_theory_json_without_a_run() -> None:
    out = partisim("theory", "--json")
    assert out.returncode == 0, out.stderr
    data = strict_json(out.stdout)
    expected = predict(SimParams())
    assert data["packing_fraction"] == pytest.approx(expected.packing_fraction)
    assert data["collision_rate_theory"] == pytest.approx(expected.collision_rate_theory)
    assert data["wall_rate_theory"] == pytest.approx(expected.wall_rate_theory)
    assert data["missed_fraction_estimate"] == pytest.approx(expected.missed_fraction_estimate)
    assert data["dt_max_2pct"] == pytest.approx(expected.dt_max_2pct)
    assert data["temperature_source"] == "initial"
    for key in ("collision_rate_measured", "wall_rate_measured", "ratio", "checksum"):
        assert key in data and data[key] is None
    assert data["warnings"] == []
    assert data["params"]["NUM_PARTICULAS"] == 100


def test_theory_run_json_measures_the_second_half() -> None:
    args = ["--particles", "150", "--steps", "600", "--seed", "4", *ELASTIC]
    out = partisim("theory", "--run", "--json", *args)
    assert out.returncode == 0, out.stderr
    data = strict_json(out.stdout)
    assert data["engine"] == "cython" and data["temperature_source"] == "measured"
    assert (data["steps"], data["measured_steps"]) == (600, 300)
    assert data["measured_time"] == pytest.approx(30.0)
    assert data["collision_rate_measured"] > 0 and data["wall_rate_measured"] > 0
    assert data["ratio"] == pytest.approx(data["collision_rate_measured"] / data["collision_rate_theory"])
    assert data["wall_ratio"] == pytest.approx(data["wall_rate_measured"] / data["wall_rate_theory"])
    # the theory is taken at the run's own temperature
    params = SimParams(particles=150, steps=600, seed=4, wall_restitution=1.0, particle_restitution=1.0)
    assert data["collision_rate_theory"] == pytest.approx(
        predict(params, data["temperature"]).collision_rate_theory, rel=1e-12
    )
    # the split run is the plain run: same counts, same checksum as `partisim run`
    plain = simulate(params, "cython")
    assert (data["particle_collisions"], data["wall_collisions"], data["checksum"]) == (
        plain.particle_collisions,
        plain.wall_collisions,
        plain.checksum,
    )


def test_theory_run_with_nothing_moving_is_still_strict_json() -> None:
    out = partisim("theory", "--run", "--json", "--max-speed", "0", "--steps", "10", "--engine", "python")
    assert out.returncode == 0, out.stderr
    data = strict_json(out.stdout)
    assert data["engine"] == "python"
    assert data["ratio"] is None and data["dt_max_2pct"] is None and data["mean_free_path"] is None


def test_theory_human_output_is_spanish() -> None:
    out = partisim_process("theory", "--run", "--steps", "200", *ELASTIC)
    assert out.returncode == 0, out.stderr
    for text in (
        "Predicción de la teoría cinética",
        "Colisiones entre partículas",
        "Choques con las paredes",
        "Recorrido libre medio",
        "medido/teoría",
        "Checksum",
    ):
        assert text in out.stdout


def test_theory_warns_when_the_gas_cools_during_the_measure() -> None:
    out = partisim("theory", "--run", "--json", "--steps", "3000")  # default restitutions 0.9 and 0.8
    assert out.returncode == 0, out.stderr
    data = strict_json(out.stdout)
    assert any("temperatura" in w for w in data["warnings"])
    assert "AVISO:" in out.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--run", "--steps", "1"], "--steps"),
        (["--temperature", "-1"], "--temperature"),
        (["--temperature", "nan"], "--temperature"),
        (["--particles", "0"], "--particles"),
        (["--engine", "java"], "--engine"),
        (["--dt", "700"], "VELOCIDAD_INICIAL_MAX*DT"),
    ],
)
def test_theory_errors_exit_2_in_spanish(args: list[str], needle: str) -> None:
    out = partisim("theory", *args)
    assert out.returncode == 2
    assert needle in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_run_warns_about_a_coarse_step_without_changing_the_result() -> None:
    out = partisim("run", "--dt", "0.8", "--steps", "200", "--json")
    assert out.returncode == 0, out.stderr
    data = strict_json(out.stdout)
    assert len(data["warnings"]) == 1 and "DT = 0,8" in data["warnings"][0]
    assert "AVISO:" in out.stderr and "DT = 0,8" in out.stderr
    plain = simulate(SimParams(dt=0.8, steps=200), "cython")
    assert (data["particle_collisions"], data["wall_collisions"], data["checksum"]) == (
        plain.particle_collisions,
        plain.wall_collisions,
        plain.checksum,
    )


def test_run_is_quiet_at_the_defaults() -> None:
    out = partisim("run", "--steps", "50", "--json")
    assert out.returncode == 0, out.stderr
    assert strict_json(out.stdout)["warnings"] == []
    assert "AVISO" not in out.stderr
    human = partisim("run", "--dt", "0.8", "--steps", "20")
    assert human.returncode == 0 and "AVISO:" in human.stderr and "Colisiones con pared" in human.stdout
