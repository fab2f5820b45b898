"""Every direct client path against a worker of the users' original design (the stand-in
tests/helpers/legacy_worker.py) and against a mixed fleet: the menu, the demo, exec,
check / test_communication.py and status handle it the same way -- the scripts' names
on the wire, results shown as "no verificable", and an engine or a parameter it would
ignore refused before anything is sent, with a message that says which."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers.config import write_config
from helpers.legacy import legacy_runs, start_legacy
from helpers.processes import HOST_A, HOST_B, Spawned
from orch_support import RunningWorker, assert_clean_exit, launch_worker, run, run_many

pytestmark = pytest.mark.slow

SCRIPTS = {"benchmark.py", "benchmark_cython.py"}


@dataclass
class Fleet:
    legacy_url: str
    legacy_only: Path  # config: the legacy worker alone
    mixed: Path  # config: a partisim worker and the legacy worker


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    tmp = tmp_path_factory.mktemp("legacy-fleet")
    proc: Spawned
    proc, url = start_legacy(HOST_B, tmp)
    worker: RunningWorker = launch_worker(HOST_A, None, "worker-01", cwd=tmp)
    try:
        port = int(url.rsplit(":", 1)[1])
        legacy_only = write_config(tmp / "solo_legacy.json", [("legacy-01", HOST_B, port)])
        mixed = write_config(tmp / "mixta.json", [("worker-01", HOST_A, worker.port), ("legacy-01", HOST_B, port)])
        yield Fleet(url, legacy_only, mixed)
    finally:
        worker.stop()
        proc.stop()


def _menu_task(config: Path, worker: str, engine_choice: str) -> list[str]:
    # option 2, the worker by id, the engine, own parameters: 40 particles, 30 steps, seed 3
    return ["2", worker, engine_choice, "n", "40", "30", "3"]


def test_menu_runs_tasks_on_a_legacy_worker_and_refuses_numpy(fleet: Fleet) -> None:
    before = len(legacy_runs(fleet.legacy_url))
    answers = [*_menu_task(fleet.legacy_only, "legacy-01", "1"), *_menu_task(fleet.legacy_only, "legacy-01", "2")]
    answers += [*_menu_task(fleet.legacy_only, "legacy-01", "3"), "0"]
    proc = run(["orchestrator", "--config", str(fleet.legacy_only)], input="\n".join(answers) + "\n")
    assert_clean_exit(proc, 0)
    out = " ".join(proc.stdout.split())
    assert out.count("Resultado de la tarea (no verificable)") == 2, proc.stdout
    assert "respuesta inesperada" not in out
    assert "no es partisim" in out and "no tiene el motor numpy" in out  # refused, and why
    runs = legacy_runs(fleet.legacy_url)[before:]
    assert [r["asked"] for r in runs] == ["benchmark.py", "benchmark_cython.py"]  # numpy never sent
    assert [r["engine"] for r in runs] == ["python", "cython"]


def test_menu_on_a_mixed_fleet_verifies_one_and_not_the_other(fleet: Fleet) -> None:
    answers = [*_menu_task(fleet.mixed, "worker-01", "2"), *_menu_task(fleet.mixed, "legacy-01", "2"), "0"]
    proc = run(["orchestrator", "--config", str(fleet.mixed)], input="\n".join(answers) + "\n")
    assert_clean_exit(proc, 0)
    assert proc.stdout.count("Resultado de la tarea (no verificable)") == 1
    assert proc.stdout.count("Resultado de la tarea") == 2


@pytest.mark.parametrize("which", ["legacy_only", "mixed"])
def test_demo_runs_on_a_legacy_worker_and_says_its_results_are_not_verifiable(fleet: Fleet, which: str) -> None:
    config = getattr(fleet, which)
    before = len(legacy_runs(fleet.legacy_url))
    proc = run(["demo", "--config", str(config)], timeout=180)
    assert_clean_exit(proc, 0)
    out = " ".join(proc.stdout.split())
    assert "respuesta inesperada" not in out
    assert "2 resultados no verificable(s)" in out
    assert "no verificable" in out
    if which == "mixed":
        assert "Todos los resultados coinciden" in out  # worker-01's python and cython
    runs = legacy_runs(fleet.legacy_url)[before:]
    assert sorted(r["asked"] for r in runs) == ["benchmark.py", "benchmark_cython.py"]


def test_exec_refuses_parameters_a_legacy_worker_would_ignore(fleet: Fleet) -> None:
    before = len(legacy_runs(fleet.legacy_url))
    base = ["exec", "--worker", "legacy-01", "--engine", "python", "-n", "30", "-s", "10", "--config"]
    width, threads, plain = run_many(
        [
            [*base, str(fleet.legacy_only), "--width", "1000", "--dt", "0.05"],
            [*base, str(fleet.legacy_only), "--threads", "2"],
            [*base, str(fleet.mixed), "--json"],
        ]
    )
    assert_clean_exit(width, 1)
    assert "ANCHO_MUNDO" in width.stderr and "DT" in width.stderr and "no es partisim" in width.stderr
    assert_clean_exit(threads, 1)
    assert "threads" in threads.stderr
    assert_clean_exit(plain, 0)
    runs = legacy_runs(fleet.legacy_url)[before:]
    assert len(runs) == 1 and runs[0]["sent"] == ["NUM_PARTICULAS", "NUM_PASOS", "SEMILLA"]
    # the same parameters on a partisim worker are applied
    on_partisim = ["exec", "--worker", "worker-01", "--engine", "cython", "-n", "30", "-s", "10", "--width", "1000"]
    applied = run([*on_partisim, "--json", "--config", str(fleet.mixed)])
    assert_clean_exit(applied, 0)
    assert json.loads(applied.stdout)["params"]["ANCHO_MUNDO"] == 1000.0


def test_check_and_test_communication_pass_on_legacy_and_mixed_fleets(fleet: Fleet) -> None:
    procs = run_many(
        [
            ["check", "--quick", "--config", str(fleet.legacy_only)],
            ["test_communication.py", "--quick", "--config", str(fleet.legacy_only)],
            ["test_communication.py", "--quick", "--config", str(fleet.mixed)],
        ],
        timeout=240,
    )
    for proc in procs:
        assert_clean_exit(proc, 0)
        out = " ".join(proc.stdout.split())
        assert "no verificable" in out and "RESULTADO: TODO CORRECTO" in out


def test_status_reads_a_legacy_workers_own_counters(fleet: Fleet) -> None:
    one = ["exec", "--worker", "legacy-01", "--engine", "python", "-n", "20", "-s", "5", "--config"]
    assert_clean_exit(run([*one, str(fleet.legacy_only)]), 0)
    done = len(legacy_runs(fleet.legacy_url))  # its own count: every run it made in this module
    shown = run(["status", "--config", str(fleet.legacy_only)])
    assert_clean_exit(shown, 0)
    detailed = shown.stdout.split("Estado detallado")[1]
    row = next(line for line in detailed.splitlines() if "legacy-01" in line)
    assert row.split("│")[4].strip() == str(done), shown.stdout  # "Hechas": its successful_tasks
