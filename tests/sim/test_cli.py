"""`partisim run` and the users' benchmark scripts. A real process for the help, the human
summary and each script's run; results and refusals in this process (`helpers.cli.run_cli`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.cli import run_cli

from partisim.cli import legacy
from partisim.sim import SimParams, engine_threads, simulate

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, script: str | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / script)] if script else [sys.executable, "-m", "partisim"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


def run_here(*args: str, script: str | None = None) -> subprocess.CompletedProcess[str]:
    """`run` in this process: `partisim.cli.main`, or the script's `legacy.main`."""
    if script is None:
        return run_cli(*args, cwd=ROOT)
    engine = {"benchmark.py": "python", "benchmark_cython.py": "cython"}[script]
    return run_cli(*args, cwd=ROOT, entry=lambda argv: legacy.main(engine, argv, prog=script))


def test_help() -> None:
    out = run("--help")
    assert out.returncode == 0 and "run" in out.stdout
    out = run("run", "--help")
    assert out.returncode == 0 and "--particles" in out.stdout


@pytest.mark.parametrize("engine", ["python", "numpy", "cython"])
def test_run_json_matches_library(engine: str) -> None:
    out = run_here(
        "run",
        "--engine",
        engine,
        "--particles",
        "80",
        "--steps",
        "120",
        "--seed",
        "5",
        "--json",
        "--width",
        "400",
        "--height",
        "300",
        "--radius",
        "4",
        "--dt",
        "0.2",
        "--max-speed",
        "15",
        "--wall-restitution",
        "0.7",
        "--particle-restitution",
        "1",
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)  # exactly one JSON object
    expected = simulate(
        SimParams(
            particles=80,
            steps=120,
            seed=5,
            width=400,
            height=300,
            radius=4,
            dt=0.2,
            max_speed=15,
            wall_restitution=0.7,
            particle_restitution=1.0,
        ),
        "python",
    )
    assert (data["particle_collisions"], data["wall_collisions"], data["checksum"]) == (
        expected.particle_collisions,
        expected.wall_collisions,
        expected.checksum,
    )
    for key in ("engine", "particles", "steps", "seed", "kinetic_energy", "simulation_time", "particle_steps_per_s"):
        assert key in data
    assert data["engine"] == engine


def test_run_human_summary_is_spanish() -> None:
    out = run("run", "-n", "50", "-s", "30")
    assert out.returncode == 0
    for text in (
        "Colisiones partícula-partícula",
        "Colisiones con pared",
        "Tiempo de simulación",
        "Partículas-paso/s",
        "Checksum",
    ):
        assert text in out.stdout
    assert "pasos/s" not in out.stdout  # piped: no progress bar


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--particles", "0"], "--particles"),
        (["--particles", "abc"], "--particles"),
        (["--steps", "-3"], "--steps"),
        (["--seed", "-1"], "--seed"),
        (["--radius", "0"], "--radius"),
        (["--dt", "nan"], "--dt"),
        (["--wall-restitution", "2"], "--wall-restitution"),
        (["--particle-restitution", "-1"], "--particle-restitution"),
        (["--max-speed", "-2"], "--max-speed"),
        (["--width", "inf"], "--width"),
        (["--height", "x"], "--height"),
        (["--engine", "java"], "--engine"),
        (["--particles", "20000"], "empaquetamiento"),
    ],
)
def test_run_errors_exit_2_and_name_the_option(args: list[str], needle: str) -> None:
    out = run_here("run", *args)
    assert out.returncode == 2
    assert needle in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


@pytest.mark.parametrize(("script", "engine"), [("benchmark.py", "python"), ("benchmark_cython.py", "cython")])
def test_legacy_scripts(script: str, engine: str) -> None:
    out = run("60", "200", "3", script=script)
    assert out.returncode == 0, out.stderr
    expected = simulate(SimParams(particles=60, steps=200, seed=3), engine)
    assert "Simulación completada en " in out.stdout and " segundos" in out.stdout
    assert f"Total colisiones Partícula-Partícula: {expected.particle_collisions}" in out.stdout
    assert f"Total colisiones con Pared: {expected.wall_collisions}" in out.stdout
    data = json.loads(run_here("60", "200", "3", "--json", script=script).stdout)
    assert data["checksum"] == expected.checksum


def test_legacy_defaults_and_help() -> None:
    out = run_here("--json", script="benchmark_cython.py")
    data = json.loads(out.stdout)
    assert (data["particles"], data["steps"], data["seed"]) == (100, 1000, 42)
    out = run_here("-h", script="benchmark.py")
    assert out.returncode == 0 and "NUM_PARTICULAS" in out.stdout


@pytest.mark.parametrize("args", [["abc"], ["10", "0"], ["10", "5", "-1"], ["1.5"], ["100", "x", "1"]])
def test_legacy_bad_input_exit_1_spanish(args: list[str]) -> None:
    for script in ("benchmark.py", "benchmark_cython.py"):
        out = run_here(*args, script=script)
        assert out.returncode == 1
        assert "debe ser" in out.stderr and "Traceback" not in out.stderr


def test_run_threads_option() -> None:
    args = ("run", "-n", "400", "-s", "60", "--width", "1000", "--height", "800", "--json")
    expected = simulate(SimParams(particles=400, steps=60, width=1000, height=800), "python")
    out = run_here(*args, "--threads", "2")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    # 400 particles: one thread is faster, and the result says so (`sim.engines.thread_plan`)
    assert (data["threads"], data["threads_requested"], data["threads_reason"]) == (1, 2, "small_work")
    assert (data["particle_collisions"], data["wall_collisions"], data["checksum"]) == (
        expected.particle_collisions,
        expected.wall_collisions,
        expected.checksum,
    )
    # more threads than cores: capped, said on stderr, reported in the summary
    out = run_here("run", "-n", "50", "-s", "5", "-t", "100000")
    assert out.returncode == 0, out.stderr
    used = engine_threads("cython", 100000)
    assert used <= (os.cpu_count() or 1)
    assert "Hilos: 1 de 100000 pedidos (menos de 20000 partículas" in out.stdout
    assert "AVISO" in out.stderr and "hilos" in out.stderr


@pytest.mark.parametrize("value", ["0", "-1", "dos"])
def test_run_threads_errors_are_spanish(value: str) -> None:
    out = run_here("run", "-n", "10", "-s", "2", "--threads", value)
    assert out.returncode == 2
    assert "--threads" in out.stderr and "debe ser un número entero" in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""
