"""The non-interactive CLI against two real workers: ping, status, exec, demo. One real
`partisim` process per command (the ping table, the status table, the exec table, the
demo); the other cases run the command in this process (`run_here`)."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import httpx
from helpers.config import write_config
from helpers.processes import HOST_A, HOST_B, free_port_on
from helpers.workers import start_worker
from orch_support import CLI_ENV, assert_clean_exit, run, run_here


def _row(output: str, worker_id: str) -> str:
    lines = [line for line in output.splitlines() if f" {worker_id} " in line]
    assert lines, f"no row for {worker_id} in:\n{output}"
    return lines[0]


def test_ping_table_with_two_workers(pair) -> None:
    proc = run(["ping", "--config", str(pair.config)])
    assert_clean_exit(proc, 0)
    for worker_id, host in [("worker-01", HOST_A), ("worker-02", HOST_B)]:
        row = _row(proc.stdout, worker_id)
        assert f"{host}:{pair.port}" in row
        assert "ACTIVO" in row and "INACTIVO" not in row
        assert re.search(r"\d+,\d ms", row), row
        assert row.count(worker_id) == 2  # configured id and the id the worker reports
    assert "Workers activos: 2/2" in proc.stdout


def test_ping_json_reports_the_documented_fields(pair) -> None:
    proc = run_here(["ping", "--config", str(pair.config), "--json"])
    assert_clean_exit(proc, 0)
    records = json.loads(proc.stdout)
    assert [r["id"] for r in records] == ["worker-01", "worker-02"]
    for r in records:
        assert r["state"] == "active"
        assert r["reported_id"] == r["id"]
        assert r["consecutive_failures"] == 0
        assert r["latency_ms"] > 0
        assert r["url"].endswith(f":{pair.port}")


def test_status_shows_docker_image_and_capacity(pair) -> None:
    as_json = run_here(["status", "--config", str(pair.config), "--json"])
    table = run(["status", "--config", str(pair.config)])
    assert_clean_exit(as_json, 0)
    for record in json.loads(as_json.stdout):
        status = record["last_status"]
        assert status["worker_id"] == record["id"]
        assert isinstance(status["docker_available"], bool)
        assert isinstance(status["image_available"], bool)
        assert status["capacity"] >= 1
    assert_clean_exit(table, 0)
    assert "Estado detallado" in table.stdout
    assert re.search(r"\d+/\d+", _row(table.stdout.split("Estado detallado")[1], "worker-02"))


def test_exec_json_returns_the_worker_result(pair) -> None:
    args = [
        "exec",
        "--config",
        str(pair.config),
        "--worker",
        "worker-02",
        "--engine",
        "cython",
        "-n",
        "100",
        "-s",
        "500",
        "--seed",
        "42",
        "--json",
    ]
    proc = run_here(args)
    assert_clean_exit(proc, 0)
    result = json.loads(proc.stdout)
    assert result["status"] == "success"
    assert result["worker_id"] == "worker-02"
    assert result["engine"] == "cython"
    assert result["params"]["NUM_PARTICULAS"] == 100 and result["params"]["NUM_PASOS"] == 500
    assert re.fullmatch(r"[0-9a-f]{64}", result["checksum"])
    # Same task through the users' benchmark name, on the other machine: same physics.
    other = run_here(
        [
            *args[:3],
            "--worker",
            "worker-01",
            "--engine",
            "benchmark.py",
            "-n",
            "100",
            "-s",
            "500",
            "--seed",
            "42",
            "--json",
        ]
    )
    assert_clean_exit(other, 0)
    again = json.loads(other.stdout)
    assert again["engine"] == "python"
    assert again["checksum"] == result["checksum"]
    assert again["particle_collisions"] == result["particle_collisions"]
    # on two threads (as many as that worker gives it): the same result again
    threaded = run_here([*args[:-1], "--threads", "2", "--json"])
    assert_clean_exit(threaded, 0)
    two = json.loads(threaded.stdout)
    assert two["threads_requested"] == 2 and 1 <= two["threads"] <= 2
    assert two["checksum"] == result["checksum"]


def test_exec_table_output(pair) -> None:
    proc = run(
        ["exec", "--config", str(pair.config), "--worker", "worker-01", "--engine", "numpy", "-n", "50", "-s", "100"]
    )
    assert_clean_exit(proc, 0)
    assert "Resultado de la tarea" in proc.stdout
    assert "Colisiones entre partículas" in proc.stdout
    assert "worker-01" in proc.stdout


def test_exec_says_what_the_worker_warns_about_a_coarse_step(pair) -> None:
    base = ["exec", "--config", str(pair.config), "--worker", "worker-01", "-n", "100", "-s", "200", "--seed", "3"]
    coarse, coarse_json, plain = (run_here(c) for c in ([*base, "--dt", "0.8"], [*base, "--dt", "0.8", "--json"], base))
    for proc in (coarse, coarse_json, plain):
        assert_clean_exit(proc, 0)
    assert "Resultado de la tarea" in coarse.stdout
    warning = " ".join(coarse.stderr.split())  # the terminal may wrap it
    assert warning.count("AVISO: paso de tiempo grueso") == 1 and "con DT = 0,8" in warning
    result = json.loads(coarse_json.stdout)  # stdout stays one JSON object; the warning is in it
    (text,) = result["warnings"]
    assert text.startswith("paso de tiempo grueso: con DT = 0,8") and f"AVISO: {text}" in warning
    assert "AVISO" in coarse_json.stderr
    assert "AVISO" not in plain.stderr + plain.stdout


def test_exec_bad_input_is_a_usage_error_before_any_request(dead_config: Path, cli) -> None:
    cases = [
        (["--engine", "../../etc/passwd"], "benchmark"),
        (["-n", "0"], "--particles: debe ser >= 1"),
        (["--timeout", "0"], "--timeout"),
    ]
    for extra, word in cases:
        # The workers of dead_config are down: a request would give 1, not 2.
        code, out, err = cli("exec", "--config", str(dead_config), "--worker", "worker-01", *extra)
        assert code == 2, (extra, out, err)
        assert word in err


def test_exec_short_timeout_is_a_failed_task(pair) -> None:
    proc = run_here(
        [
            "exec",
            "--config",
            str(pair.config),
            "--worker",
            "worker-01",
            "--engine",
            "python",
            "-n",
            "2000",
            "-s",
            "1000000",
            "--timeout",
            "1",
            "--json",
        ]
    )
    assert_clean_exit(proc, 1)
    body = json.loads(proc.stdout)
    assert body["status"] == "error" and "tiempo límite" in body["error"]
    assert "worker-01" in proc.stderr


def test_demo_on_two_workers(pair) -> None:
    proc = run(["demo", "--config", str(pair.config), "-n", "60", "-s", "200"])
    assert_clean_exit(proc, 0)
    out = proc.stdout
    assert "Comparación Python vs Cython" in out
    comparison = out.split("Comparación Python vs Cython")[1]
    for worker_id in ("worker-01", "worker-02"):
        row = _row(comparison, worker_id)
        assert "coinciden" in row
        assert re.search(r"\d+(,\d+)?×", row), row  # a speed-up, as `numbers.ratio` writes it (122×, 56,7×)
        collisions = re.search(r"(\d+) / (\d+)", row)
        assert collisions and collisions.group(1) == collisions.group(2)
    assert "Todos los resultados coinciden" in out
    assert "Estado detallado" in out
    # both workers run on this machine (one boot id): one after the other, never at once
    assert "uno tras otro (comparten máquina)" in " ".join(out.split())
    runs = sorted(
        (datetime.fromisoformat(t["started_at"]), datetime.fromisoformat(t["finished_at"]))
        for w in (pair.a, pair.b)
        for t in httpx.get(w.url + "/history", params={"limit": 4}, timeout=10, trust_env=False).json()["tasks"]
    )[-4:]
    assert all(end <= start for (_, end), (start, _) in itertools.pairwise(runs)), runs


def test_demo_runs_workers_of_different_machines_at_once() -> None:
    from partisim.fleet.health import WorkerHealth
    from partisim.orchestrator.demo import by_machine
    from partisim.protocol import WorkerStatus

    def worker(name: str, host: str) -> WorkerHealth:
        h = WorkerHealth(name, f"http://127.0.0.1:1/{name}")
        h.last_status = WorkerStatus(worker_id=name, host_id=host)
        return h

    groups = by_machine([worker("a", "boot-1"), worker("b", "boot-2"), worker("c", "boot-1"), worker("d", "")])
    assert [[h.id for h in g] for g in groups.values()] == [["a", "c"], ["b"], ["d"]]


def test_no_active_workers(dead_config: Path) -> None:
    config = ["--config", str(dead_config)]
    ping, status, demo, exec_, as_json = (
        run_here(c)
        for c in (
            ["ping", *config],
            ["status", *config],
            ["demo", *config],
            ["exec", *config, "--worker", "worker-02", "-n", "10", "-s", "10"],
            ["ping", *config, "--json"],
        )
    )
    for proc in (ping, status, demo):
        assert_clean_exit(proc, 1)
        assert "NO HAY MÁQUINAS ACTIVAS" in proc.stdout
        assert "Qué revisar" in proc.stdout
    assert_clean_exit(exec_, 1)
    assert "worker-02 no responde" in exec_.stderr
    assert_clean_exit(as_json, 1)
    assert {r["state"] for r in json.loads(as_json.stdout)} == {"inactive"}


def test_verbose_logs_carry_timestamps(dead_config: Path) -> None:
    proc = run_here(["ping", "--config", str(dead_config), "--verbose"])
    assert_clean_exit(proc, 1)
    assert re.search(r"\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\]", proc.stderr), proc.stderr


def test_token_from_the_environment_reaches_protected_endpoints(tmp_path: Path) -> None:
    port = free_port_on(HOST_A)
    worker = start_worker(
        HOST_A, port, "--runner", "process", env={"WORKER_ID": "worker-01", "PARTISIM_TOKEN": "secreto-de-prueba"}
    )
    try:
        config = write_config(tmp_path / "c.json", [("worker-01", HOST_A, port)])
        without = run_here(["status", "--config", str(config), "--json"])
        with_token = run_here(
            ["status", "--config", str(config), "--json"], env={"PARTISIM_TOKEN": "secreto-de-prueba"}
        )
        # /ping is open, so the worker is active either way; /status needs the token.
        (record,) = json.loads(without.stdout)
        assert record["state"] == "active" and record["last_status"] is None
        assert "401" in record["last_error"] or "token" in record["last_error"].lower()
        (record,) = json.loads(with_token.stdout)
        assert record["last_status"]["auth_required"] is True
        assert record["last_error"] is None
    finally:
        worker.kill()


def test_building_the_parser_stays_light() -> None:
    # Every `partisim` command (also `partisim run` in each task's container) builds the
    # whole parser: the HTTP client and the queue's database are imported only when used.
    code = (
        "import sys; from partisim.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('httpx', 'sqlite3', 'rich.progress') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=CLI_ENV, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_ping_and_status_fit_80_columns(pair, tmp_path: Path) -> None:
    # a live pair and a dead worker: an address and an error that must not be cut
    config = write_config(
        tmp_path / "config_workers.json",
        [
            ("worker-01", HOST_A, pair.port),
            ("worker-02", HOST_B, pair.port),
            ("worker-muerto", HOST_B, free_port_on(HOST_B)),
        ],
    )
    ping, status = (run_here([c, "--config", str(config)], env={"COLUMNS": "80"}) for c in ("ping", "status"))
    for proc in (ping, status):
        assert_clean_exit(proc, 0)
        wide = [line for line in proc.stdout.splitlines() if len(line) > 80]
        assert wide == [], "\n".join(wide)
        assert f"{HOST_B}:{pair.port}" in _row(proc.stdout, "worker-02")  # never cut
    # the error of the dead worker, wrapped in its last column: Spanish, whole
    lines = ping.stdout.split(" worker-muerto ")[1].split("└")[0].splitlines()
    detail = " ".join(line.split("│")[-2].strip() for line in lines if line.count("│") > 2)
    assert "no se puede conectar: conexión rechazada (nada escucha en ese puerto)" in detail, detail
    assert "ConnectError" not in ping.stdout
    table = status.stdout.split("Estado detallado")[1]
    row = _row(table, "worker-01")
    assert "ACTIVO" in row and "ready" not in table and "busy" not in table
    assert re.search(r"libre|ocupado", table)
    header = next(line for line in table.splitlines() if "Hechas" in line)
    assert "Fall" in header and "CPU/carga" not in table and "OK/Fallos" not in table
    assert "Imagen Docker que busca cada worker: particle-simulation:latest" in " ".join(table.split())


def test_mistyped_option_suggests_the_closest(cli) -> None:
    code, out, err = cli("run", "--partcles", "5")
    assert code == 2 and out == ""
    assert "opción desconocida --partcles; ¿quiso decir --particles?" in err
    assert "uso: partisim run" in err  # the usage of the command, not the top level
    code, _, err = cli("statu")
    assert code == 2 and "comando desconocido «statu»; ¿quiso decir «status»?" in err
    code, _, err = cli("worke")  # a guess never starts a server, but names how to
    assert code == 2 and "¿quiso decir «ping»" in err and "Para arrancar uno: partisim worker" in err
    code, out, err = cli("run", "--particles", "2000000")
    assert code == 2 and "Error: --particles: debe ser <= 1000000 (recibido 2000000)" in err
    assert "NUM_PARTICULAS" not in err and "(particles)" not in err


def test_help_is_spanish_and_light() -> None:
    code = (
        "import sys\nfrom partisim.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('LOADED', sorted(m for m in ('numpy', 'pydantic', 'rich', 'httpx', 'matplotlib', 'sqlite3')"
        " if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=CLI_ENV, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"--version +muestra la versión y sale", proc.stdout)
    assert "show program" not in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == "LOADED []"


def test_the_command_table_is_what_the_modules_register() -> None:
    # `partisim --help` lists the commands from partisim.cli._commands without importing
    # their modules: the list must be the one the modules really build
    import argparse

    from partisim.cli import build_parser
    from partisim.cli._commands import COMMANDS

    for parser in (build_parser(), build_parser(only="")):
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        listed = {choice.dest: choice.help for choice in action._choices_actions}
        assert sorted(listed) == sorted(COMMANDS)
        assert listed == {name: text for name, (_, text) in COMMANDS.items()}
