"""The rough edges of the queue commands (issue 24 §2 and §4): a failed row in narrow
tables, ``-o`` without ``--format``, a reader that goes away, listing and cancelling the
queue, ``serve --local``. Real serve and workers; the commands run in this process
(`run_here`), except the reader that goes away and one `sweep`, `queue` and `cancel`,
which run as real ``partisim`` processes."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from helpers.processes import HOST_A, SERVE_HOST, Spawned, answers, clean_env, free_port_on, wait_for
from queue_support import Cluster, run_cli, run_here, wait_batch

from partisim.serve.client import ServerClient
from partisim.sim.environment import usable_cpus
from partisim.sim.numbers import duration, integer


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """serve on one worker that takes at most 50 particles: a batch of three tasks that
    succeed and one refused by the worker (a failed row with a long error)."""
    tmp = tmp_path_factory.mktemp("mixed")
    c = Cluster(tmp)
    try:
        worker = c.worker(HOST_A, "worker-a", capacity=2, extra=("--max-particles", "50"))
        serve = c.serve(c.config([("worker-a", worker.url)]), tmp / "q.db", wait_workers=1)
        tiny = {"NUM_PASOS": 3, "SEMILLA": 1}
        with ServerClient(serve.url) as client:
            answer = client.submit(
                [
                    {"benchmark": "cython", "params": {**tiny, "NUM_PARTICULAS": 10}, "repeat": 2},
                    {"benchmark": "python", "params": {**tiny, "NUM_PARTICULAS": 40}},
                    {"benchmark": "python", "params": {**tiny, "NUM_PARTICULAS": 100}},
                ]
            )
            wait_batch(client, answer.batch, timeout=60)
            tasks = client.tasks(batch=answer.batch)
        assert sorted(t.status for t in tasks) == ["failed", "success", "success", "success"], tasks
        yield serve, answer.batch, tmp, tasks, worker
    finally:
        c.stop_all()


@pytest.mark.parametrize("columns", [80, 60])
def test_results_with_a_failed_row_fit_and_cut_no_number(mixed, columns):
    serve, batch, tmp, tasks, _worker = mixed
    done = run_here("results", "--batch", batch, "--server", serve.url, cwd=tmp, env={"COLUMNS": str(columns)})
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert max(len(line) for line in out.splitlines()) <= columns, out
    assert "…" not in out
    flat = " ".join(out.split())
    for task in tasks:
        assert task.id in out  # every id whole, on one line
        assert integer(task.params["NUM_PARTICULAS"]) in out
        if task.result is not None:
            assert duration(task.result.simulation_time) in out, (duration(task.result.simulation_time), out)
    (failed,) = [t for t in tasks if t.status == "failed"]
    # the error is numbered under the table, wrapped at its words, never split inside one
    assert "Error 1:" in out and "(error 1)" in out
    for word in failed.error.split():
        assert word in out, (word, out)
    assert "Resultados (4 tareas)" in flat
    # anything not shown is named
    if "Colis" not in out:
        assert "Columnas ocultas por el ancho del terminal:" in flat and "Colisiones" in flat


def test_tiny_times_are_shown_in_a_unit_that_fits(mixed):
    serve, batch, tmp, _tasks, _ = mixed
    done = run_here("results", "--batch", batch, "--server", serve.url, cwd=tmp)
    times = re.findall(r"\b\d+(?:,\d+)? (?:s|ms|µs)\b", done.stdout)
    assert len(times) == 3, done.stdout
    assert "0,0000" not in done.stdout and "0.0000" not in done.stdout


@pytest.mark.parametrize(
    ("name", "reader"),
    [
        ("todas.csv", lambda text: text.splitlines()[0].startswith("id,")),
        ("todas.json", lambda text: isinstance(json.loads(text), list)),
        ("todas.ndjson", lambda text: all(json.loads(line) for line in text.splitlines())),
    ],
)
def test_output_file_takes_its_format_from_the_extension(mixed, name, reader):
    serve, batch, tmp, tasks, _ = mixed
    out = tmp / name
    done = run_here("results", "--batch", batch, "-o", str(out), "--server", serve.url, cwd=tmp)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # no table printed instead of the file
    assert reader(out.read_text(encoding="utf-8"))
    assert f"{len(tasks)} tareas escritas en {out}" in done.stderr


def test_output_file_of_unknown_kind_is_refused_with_a_reason(mixed):
    serve, _batch, tmp, _, _ = mixed
    done = run_here("results", "-o", str(tmp / "todas.txt"), "--server", serve.url, cwd=tmp)
    assert done.returncode == 2 and not (tmp / "todas.txt").exists()
    assert "use la extensión .csv, .json o .ndjson" in done.stderr and "Traceback" not in done.stderr
    done = run_here("results", "--format", "tabla", "-o", str(tmp / "t.csv"), "--server", serve.url, cwd=tmp)
    assert done.returncode == 2 and "la tabla solo se muestra en el terminal" in done.stderr
    # a format that contradicts the extension: refused, nothing written
    done = run_here("results", "--format", "csv", "-o", str(tmp / "y.json"), "--server", serve.url, cwd=tmp)
    assert done.returncode == 2 and not (tmp / "y.json").exists()
    assert "--format csv no corresponde a la extensión" in " ".join(done.stderr.split())
    # an extension that names no format leaves --format in charge
    done = run_here("results", "--format", "csv", "-o", str(tmp / "y.txt"), "--server", serve.url, cwd=tmp)
    assert done.returncode == 0 and (tmp / "y.txt").read_text(encoding="utf-8").startswith("id,")


@pytest.mark.parametrize("fmt", ["json", "csv", "tabla"])
def test_a_reader_that_goes_away_ends_the_command_quietly(mixed, fmt):
    serve, _batch, tmp, _, _ = mixed
    proc = subprocess.Popen(
        [sys.executable, "-m", "partisim", "results", "--format", fmt, "--server", serve.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp,
        env=clean_env(COLUMNS="100"),
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first line is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141, err
    assert err == "", err


def test_status_takes_spanish_names(mixed):
    serve, _batch, tmp, _tasks, _ = mixed
    done = run_here("results", "--status", "fallida", "--format", "ndjson", "--server", serve.url, cwd=tmp)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["status"] for line in done.stdout.splitlines()] == ["failed"]
    done = run_here("results", "--help")
    assert "en-cola, en-curso, éxito, fallida, cancelada" in " ".join(done.stdout.split())


def test_queue_lists_pending_tasks_and_cancel_cancels_them(cluster: Cluster, tmp_path: Path):
    # a worker that never answers: the tasks wait in the queue
    config = cluster.config([("worker-a", f"http://{HOST_A}:{free_port_on(HOST_A)}")])
    serve = cluster.serve(config, tmp_path / "q.db")
    sweep = run_cli(
        "sweep", "--engines", "cython", "--particles", "10", "--steps", "3", "--seeds", "1-3",
        "--server", serve.url, cwd=tmp_path,
    )  # fmt: skip
    assert sweep.returncode == 0, sweep.stderr
    with ServerClient(serve.url) as client:
        (batch,) = [b.batch for b in client.batches()]
        ids = [t.id for t in client.tasks(batch=batch)]
    listed = run_cli("queue", "--server", serve.url, cwd=tmp_path, env={"COLUMNS": "80"})
    assert listed.returncode == 0, listed.stderr
    flat = " ".join(listed.stdout.split())
    assert all(i in listed.stdout for i in ids) and "Tareas pendientes de la cola (3 tareas)" in flat
    assert "partisim cancel" in flat
    # nothing has run: no empty result columns take the room of the ones that say something
    assert "T. sim" not in flat and "Checksum" not in flat and "Sem." in flat, listed.stdout

    one = run_cli("cancel", ids[0], "--server", serve.url, cwd=tmp_path)
    assert one.returncode == 0 and "1 tarea cancelada" in one.stdout, one.stderr + one.stdout
    rest = run_here("cancel", "--batch", batch, "--server", serve.url, cwd=tmp_path)
    assert rest.returncode == 0 and "2 tareas canceladas" in rest.stdout, rest.stderr + rest.stdout
    with ServerClient(serve.url) as client:
        assert {t.status for t in client.tasks(batch=batch)} == {"cancelled"}
    again = run_here("cancel", ids[0], "--server", serve.url, cwd=tmp_path)
    assert again.returncode == 1 and "no se puede cancelar" in again.stdout, again.stdout
    assert "(cancelada)" in " ".join(again.stdout.split()) and "cancelled" not in again.stdout
    empty = run_here("queue", "--server", serve.url, cwd=tmp_path)
    assert "No hay tareas pendientes de la cola." in empty.stdout
    both = run_here("cancel", ids[0], "--batch", batch, "--server", serve.url, cwd=tmp_path)
    assert both.returncode == 2 and "no ambas cosas" in both.stderr
    neither = run_here("cancel", "--server", serve.url, cwd=tmp_path)
    assert neither.returncode == 2 and "indique qué cancelar" in neither.stderr and "ambas" not in neither.stderr


@pytest.mark.slow
def test_serve_local_starts_and_stops_its_own_workers(tmp_path: Path):
    port = free_port_on(SERVE_HOST)
    url = f"http://{SERVE_HOST}:{port}"
    serve = Spawned("serve-local", tmp_path)
    argv = [sys.executable, "-m", "partisim", "serve", "--local", "2", "--host", SERVE_HOST, "--port", str(port)]
    serve.launch([*argv, "--db", str(tmp_path / "q.db")], cwd=tmp_path, env=clean_env(PYTHONUNBUFFERED="1"))
    try:
        serve.wait_ready(lambda: answers(url + "/api/health"), 90)
        wait_for(lambda: "2 workers locales" in " ".join(serve.log().split()), 30, "the banner names the workers")
        workers = set(re.findall(r"http://127\.0\.0\.1:\d+", serve.log())) - {url}  # not serve's own
        assert len(set(workers)) == 2, serve.log()
        done = run_cli(
            "sweep", "--engines", "python,cython", "--particles", "20", "--steps", "5", "--seeds", "1,2",
            "--server", url, "--wait", "--timeout-wait", "60", cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr + done.stdout
        with ServerClient(url) as client:
            assert {t.worker for t in client.tasks()} <= {"local-01", "local-02"}
            # they share this machine: their slots together are its CPUs, never more
            capacities = [m.capacity for m in client.workers()]
        assert capacities == [max(1, usable_cpus() // 2)] * 2, capacities
        assert serve.proc is not None
        serve.proc.send_signal(signal.SIGINT)  # as Ctrl-C in its terminal
        assert serve.proc.wait(timeout=30) == 0, serve.log()
        assert "Workers locales detenidos." in serve.log()
        for worker in set(workers):
            with pytest.raises(httpx.TransportError):
                httpx.get(worker + "/ping", timeout=2.0, trust_env=False)
    finally:
        serve.stop(timeout=10)


def test_report_of_one_size_with_a_failure_says_so(mixed):
    serve, _batch, tmp, _, _ = mixed
    tiny = {"NUM_PASOS": 20, "NUM_PARTICULAS": 30}
    with ServerClient(serve.url) as client:
        answer = client.submit(
            [
                {"benchmark": "python", "params": {**tiny, "SEMILLA": 1}, "repeat": 2},
                {"benchmark": "cython", "params": {**tiny, "SEMILLA": 1}, "repeat": 2},
                {"benchmark": "python", "params": {**tiny, "NUM_PARTICULAS": 100}},
            ]
        )
        wait_batch(client, answer.batch, timeout=60)
    png = tmp / "una-talla.png"
    done = run_here(
        "report", "--batch", answer.batch, "-o", str(png), "--server", serve.url, cwd=tmp, env={"COLUMNS": "80"}
    )
    assert done.returncode == 0, done.stderr
    assert png.read_bytes().startswith(b"\x89PNG")
    assert [line for line in done.stdout.splitlines() if len(line) > 80] == []  # piped, still wrapped
    flat = " ".join(done.stdout.split())
    assert "Fallidas: 1 tarea fallida no entra en las gráficas" in flat and "max_particles" in flat
    shutil.copy(png, "/tmp/partisim-report-one-size.png")
