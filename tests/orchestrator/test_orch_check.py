"""test_communication.py (= partisim check): exit codes with 0, 1 and 2 workers up."""

from __future__ import annotations

from pathlib import Path

import httpx
from helpers.config import write_config
from helpers.processes import HOST_B, free_port_on
from orch_support import assert_clean_exit, run

CHECK_COLUMNS = ["Ping", "Estado", "Python", "Cython", "Inválida", "Timeout"]


def _summary_row(out: str, worker_id: str) -> str:
    table = out.split("Resumen de pruebas")[1]
    return next(line for line in table.splitlines() if f" {worker_id} " in line)


def _counts(pair) -> dict[str, tuple[int, int]]:
    """(failed, timeouts) of each worker, from its own /status."""
    out = {}
    for worker_id, worker in pair.workers.items():
        status = httpx.get(worker.url + "/status", timeout=10, trust_env=False).json()
        out[worker_id] = (status["failed"], status["timeouts"])
    return out


def test_two_workers_up_full_suite_passes(pair) -> None:
    before = _counts(pair)
    proc = run(["test_communication.py", "--config", str(pair.config)], timeout=120)
    assert_clean_exit(proc, 0)
    # the timeout check stops a task on purpose: a timeout, not a failure of the worker
    after = _counts(pair)
    for worker_id, (failed, timeouts) in before.items():
        assert after[worker_id] == (failed, timeouts + 1), (worker_id, before, after)
    out = proc.stdout
    header = next(line for line in out.split("Resumen de pruebas")[1].splitlines() if "Worker" in line)
    for column in CHECK_COLUMNS:
        assert column in header
    for worker_id in ("worker-01", "worker-02"):
        row = _summary_row(out, worker_id)
        assert row.count("OK") == len(CHECK_COLUMNS) and "SUPERADO" in row, row
    assert "Workers activos: 2/2" in out
    assert "checksum igual al de Python" in out
    assert "rechazadas con 422" in out
    assert "el worker sigue respondiendo y quedó libre" in out
    assert "TODO CORRECTO" in out


def test_one_worker_up_fails(pair, tmp_path: Path) -> None:
    dead_port = free_port_on(HOST_B)
    config = write_config(
        tmp_path / "config_workers.json",
        [
            ("worker-01", "127.0.0.93", pair.port),
            ("worker-02", HOST_B, dead_port),
        ],
    )
    proc = run(["check", "--config", str(config), "--quick"])
    assert_clean_exit(proc, 1)
    out = proc.stdout
    assert "SUPERADO" in _summary_row(out, "worker-01")
    assert "FALLIDO" in _summary_row(out, "worker-02")
    assert "worker-02 · Ping (< 5 s)" in out and "resto de pruebas omitidas" in out
    assert "Workers activos: 1/2" in out
    assert "NO HAY MÁQUINAS ACTIVAS" not in out


def test_no_worker_up_fails(dead_config: Path) -> None:
    proc = run(["test_communication.py", "--config", str(dead_config)])
    assert_clean_exit(proc, 1)
    assert "Workers activos: 0/2" in proc.stdout
    assert "NO HAY MÁQUINAS ACTIVAS" in proc.stdout
