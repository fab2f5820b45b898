"""The users' earlier fleet: a worker of the original ETAPA-4 design (a stand-in written
for these tests, tests/helpers/legacy_worker.py) and the ETAPA-6 style of
config_workers.json ("host", "capacity", "algorithms") and task files."""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from pathlib import Path

import httpx
import pytest
from helpers.processes import HOST_A, HOST_B, Spawned, free_port_on
from helpers.workers import TINY, start_worker
from queue_support import QUEUE_SETTINGS, Cluster, run_cli, wait_batch

from partisim.errors import ParamsError
from partisim.serve.client import ServerClient
from partisim.sim import parse_params

LEGACY = Path(__file__).resolve().parents[1] / "helpers" / "legacy_worker.py"


def _legacy(cluster: Cluster, host: str = HOST_B, worker_id: str = "legacy-01") -> tuple[Spawned, str]:
    proc = Spawned(f"legacy-{worker_id}", cluster.tmp)
    cluster.procs.append(proc)
    proc.launch([sys.executable, str(LEGACY), "--host", host, "--port", "0", "--worker-id", worker_id], cwd=cluster.tmp)
    port = proc.wait_ready(lambda: (m := re.search(r"LISTENING (\d+)", proc.log())) and int(m.group(1)), 30)
    return proc, f"http://{host}:{port}"


def _runs(url: str) -> list[dict]:
    return httpx.get(url + "/legacy/runs", timeout=10, trust_env=False).json()


def _write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def _host_config(tmp: Path, workers: list[dict], **settings: object) -> Path:
    """The ETAPA-6 style: "host" instead of "ip", plus "capacity" and "algorithms"."""
    return _write(
        tmp / "config_workers.json",
        {
            "workers": workers,
            "orchestrator": {
                "timeout": 5,
                "retry_attempts": 3,
                "max_concurrent_tasks": 4,
                **QUEUE_SETTINGS,
                **settings,
            },
        },
    )


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@pytest.mark.slow
def test_exec_on_a_legacy_worker_runs_cython_and_says_it_cannot_be_verified(cluster: Cluster, tmp_path: Path):
    _, url = _legacy(cluster)
    config = _host_config(tmp_path, [{"id": "legacy-01", "host": HOST_B, "port": _port(url)}])
    proc = run_cli(
        "exec",
        "--worker",
        "legacy-01",
        "--engine",
        "cython",
        "-n",
        "40",
        "-s",
        "20",
        "--json",
        "--config",
        str(config),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["verifiable"] is False and answer["engine"] == "cython"
    assert answer["benchmark"] == "benchmark_cython.py" and answer["worker_id"] == "legacy-01"
    assert answer["particle_collisions"] is None and "output" in answer["reported"]
    read = ["NUM_PARTICULAS", "NUM_PASOS", "SEMILLA"]  # only what it reads is sent
    assert _runs(url) == [
        {"asked": "benchmark_cython.py", "ran": "benchmark_cython.py", "engine": "cython", "sent": read}
    ]
    # the table says so in words; python goes by its script's name too
    shown = run_cli(
        "exec",
        "--worker",
        "legacy-01",
        "--engine",
        "python",
        "-n",
        "40",
        "-s",
        "20",
        "--config",
        str(config),
        cwd=tmp_path,
    )
    assert shown.returncode == 0 and "no verificable" in shown.stdout
    assert _runs(url)[-1] == {"asked": "benchmark.py", "ran": "benchmark.py", "engine": "python", "sent": read}
    # numpy has no script name: it would silently run Python there, so it is refused
    numpy = run_cli(
        "exec",
        "--worker",
        "legacy-01",
        "--engine",
        "numpy",
        "-n",
        "40",
        "-s",
        "20",
        "--config",
        str(config),
        cwd=tmp_path,
    )
    assert numpy.returncode == 1 and "numpy" in numpy.stderr and "Traceback" not in numpy.stderr
    assert len(_runs(url)) == 2


@pytest.mark.slow
def test_check_reports_partisim_only_checks_as_unsupported_on_a_legacy_worker(cluster: Cluster, tmp_path: Path):
    _, url = _legacy(cluster)
    config = _host_config(tmp_path, [{"id": "legacy-01", "host": HOST_B, "port": _port(url)}])
    proc = run_cli("check", "--config", str(config), cwd=tmp_path, timeout=180)
    out = " ".join(proc.stdout.split())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert out.count("no soportado por este worker") == 2  # 422 on bad input, the timeout
    assert "no verificable" in out and "RESULTADO: TODO CORRECTO" in out
    assert [r["ran"] for r in _runs(url)] == ["benchmark.py", "benchmark_cython.py"]


@pytest.mark.slow
def test_serve_sends_each_engine_where_it_may_run_and_keeps_legacy_answers_unverified(cluster: Cluster, tmp_path: Path):
    worker = cluster.worker(HOST_A, "worker-01", capacity=2)
    _, legacy_url = _legacy(cluster)
    config = _host_config(
        tmp_path,
        [
            {"id": "worker-01", "host": HOST_A, "port": worker.port, "capacity": 1, "algorithms": ["python", "numpy"]},
            {
                "id": "legacy-01",
                "host": HOST_B,
                "port": _port(legacy_url),
                "capacity": 2,
                "algorithms": ["benchmark.py", "benchmark_cython.py"],
            },
        ],
    )
    serve = cluster.serve(config, tmp_path / "q.db", wait_workers=2)
    with ServerClient(serve.url) as client:
        members = {m.id: m for m in client.workers()}
        assert members["worker-01"].capacity == 1 and members["legacy-01"].capacity == 2
        assert members["legacy-01"].last_status is not None and members["legacy-01"].last_status.software == ""
        answer = client.submit([{"benchmark": e, "params": TINY, "repeat": 3} for e in ("numpy", "cython", "python")])
        state = wait_batch(client, answer.batch, timeout=90)
        assert state.success == 9, state
        tasks = client.tasks(batch=answer.batch)
    by_engine: dict[str, set[str | None]] = {}
    for t in tasks:
        by_engine.setdefault(t.benchmark, set()).add(t.worker)
    assert by_engine["numpy"] == {"worker-01"}  # the legacy worker would run Python for it
    assert by_engine["cython"] == {"legacy-01"}  # worker-01 is not allowed cython
    for t in tasks:
        if t.worker == "legacy-01":
            assert not t.verifiable and t.result is None and t.foreign_result is not None
            assert t.foreign_result.engine == t.benchmark and t.foreign_result.reported["benchmark"]
        else:
            assert t.verifiable and t.result is not None and t.result.checksum
    ran = _runs(legacy_url)
    cython_runs = [r for r in ran if r["asked"] == "benchmark_cython.py"]
    assert len(cython_runs) == 3 and all(r["engine"] == "cython" for r in cython_runs)
    assert all(r["asked"] in ("benchmark.py", "benchmark_cython.py") for r in ran)
    # results: the CSV says which rows cannot be verified
    proc = run_cli("results", "--server", serve.url, "--batch", answer.batch, "--format", "csv", cwd=tmp_path)
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert len(rows) == 9
    for row in rows:
        assert row["verifiable"] == ("False" if row["worker"] == "legacy-01" else "True")
        assert (row["checksum"] == "") == (row["worker"] == "legacy-01")
    table = run_cli("results", "--server", serve.url, "--batch", answer.batch, cwd=tmp_path)
    assert "no verificable" in table.stdout


def test_a_worker_finds_its_identity_in_a_host_style_config(tmp_path: Path):
    port = free_port_on(HOST_A)
    _host_config(
        tmp_path,
        [
            {"id": "maquina-a", "host": HOST_A, "port": port, "capacity": 4, "algorithms": ["python", "cython"]},
            {"id": "maquina-b", "host": HOST_B, "port": port, "capacity": 2, "algorithms": ["benchmark.py"]},
        ],
    )
    worker = start_worker(HOST_A, port, cwd=tmp_path)  # no --worker-id: the config names it
    try:
        ping = httpx.get(worker.url + "/ping", timeout=10, trust_env=False).json()
        assert ping["worker_id"] == "maquina-a"
    finally:
        worker.stop()


def _etapa6_aliases() -> bool:
    try:
        parse_params({"num_particles": 10, "num_steps": 2, "seed": 1})
    except ParamsError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not _etapa6_aliases(), reason="los alias num_particles/num_steps/seed aún no están en sim.params")
def test_an_etapa6_task_file_with_a_host_config_runs_unchanged(cluster: Cluster, tmp_path: Path):
    worker = cluster.worker(HOST_A, "worker-01", capacity=2)
    config = _host_config(
        tmp_path,
        [{"id": "worker-01", "host": HOST_A, "port": worker.port, "capacity": 2, "algorithms": ["python", "cython"]}],
    )
    tasks = _write(
        tmp_path / "tareas.json",
        {
            "tasks": [
                {"benchmark": "python", "params": {"num_particles": 50, "num_steps": 20, "seed": 7}},
                {"benchmark": "cython", "params": {"num_particles": 50, "num_steps": 20, "seed": 7}},
            ]
        },
    )
    serve = cluster.serve(config, tmp_path / "q.db", wait_workers=1)
    proc = run_cli("submit", str(tasks), "--server", serve.url, "--wait", "--timeout-wait", "60", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with ServerClient(serve.url) as client:
        done = client.tasks(status="success")
    assert len(done) == 2
    assert {t.params["NUM_PARTICULAS"] for t in done} == {50}
    assert done[0].result.checksum == done[1].result.checksum  # python and cython agree
