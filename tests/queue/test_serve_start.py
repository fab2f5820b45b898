"""How ``partisim serve`` starts, or refuses to: a damaged database of each kind, a busy
port, the banner (only once it listens) and the warning for an open, tokenless address.
Each refusal: exit code 2, one Spanish line, no traceback, no banner."""

from __future__ import annotations

import os
import socket
import sqlite3
from pathlib import Path

import pytest
from helpers.config import write_config
from helpers.processes import SERVE_HOST, Spawned, free_port_on, wait_for
from queue_support import run_cli

from partisim.serve.queue.store import TaskQueue
from partisim.serve.queue.task import TaskSpec

PAGE = 4096


def _config(tmp: Path) -> Path:
    # a worker nobody runs: serve starts all the same (tasks would wait)
    return write_config(tmp / "config.json", [("worker-a", "127.0.0.93", free_port_on("127.0.0.93"))])


def _good_database(path: Path, tasks: int = 3000) -> Path:
    """A real queue with enough rows to fill many pages, closed (WAL checkpointed)."""
    with TaskQueue(path) as q:
        q.enqueue([TaskSpec("python", {"NUM_PARTICULAS": 10, "NUM_PASOS": k + 1, "SEMILLA": k}) for k in range(tasks)])
    assert not Path(str(path) + "-wal").exists() or Path(str(path) + "-wal").stat().st_size == 0
    return path


def _damaged_pages(path: Path) -> None:
    """Keep page 1 (header and schema), scribble over pages further in."""
    size = path.stat().st_size
    assert size > 12 * PAGE
    with open(path, "r+b") as f:
        for page in (3, 6, 9):
            f.seek(page * PAGE + 100)
            f.write(os.urandom(PAGE - 200))


def _truncated(path: Path) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size // 2 + 1234)  # mid-page


def _garbage(path: Path) -> None:
    path.write_bytes(os.urandom(64 * 1024))


def _foreign(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE tasks (name TEXT, done INTEGER)")
        conn.execute("INSERT INTO tasks VALUES ('comprar pan', 0)")


DAMAGE = {
    "damaged_pages": (_damaged_pages, ["dañada"]),
    "truncated": (_truncated, ["dañada"]),
    "garbage": (_garbage, ["dañada", "not a database"]),
    "foreign_tasks_table": (_foreign, ["no es de partisim", "columnas"]),
}


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_a_damaged_database_is_refused_with_one_clear_line(tmp_path: Path, kind: str) -> None:
    db = tmp_path / "cola.db"
    damage, words = DAMAGE[kind]
    if kind != "foreign_tasks_table":
        _good_database(db)
    damage(db)
    before = db.read_bytes()
    port = free_port_on(SERVE_HOST)
    proc = run_cli(
        "serve",
        "--config",
        str(_config(tmp_path)),
        "--db",
        str(db),
        "--host",
        SERVE_HOST,
        "--port",
        str(port),
        cwd=tmp_path,
        timeout=60,
    )
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, text
    assert "Traceback" not in text
    assert "partisim serve en" not in text  # no banner for a server that never started
    message = " ".join(proc.stderr.split())
    assert message.startswith("Error:") and "cola.db" in message, message
    for word in words:
        assert word in message, message
    assert db.read_bytes() == before  # refused before anything was written to it
    with socket.socket() as s:  # and the port is free again
        s.bind((SERVE_HOST, port))


def test_a_healthy_database_passes_the_check(tmp_path: Path) -> None:
    db = _good_database(tmp_path / "cola.db", tasks=50)
    with TaskQueue(db, verify=True) as q:
        assert q.counts()["queued"] == 50


def test_an_old_database_gets_the_new_columns(tmp_path: Path) -> None:
    db = tmp_path / "vieja.db"
    with sqlite3.connect(db) as conn:  # the schema of the first version, with one task in it
        conn.execute(
            "CREATE TABLE tasks (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, batch TEXT NOT NULL,"
            " status TEXT NOT NULL, benchmark TEXT NOT NULL, params TEXT NOT NULL, timeout REAL, verify_of TEXT,"
            " exclude_worker TEXT, avoid_worker TEXT, worker TEXT, worker_url TEXT, attempts INTEGER NOT NULL"
            " DEFAULT 0, max_attempts INTEGER NOT NULL, not_before REAL NOT NULL DEFAULT 0, deadline REAL,"
            " created_at REAL NOT NULL, started_at REAL, finished_at REAL, result TEXT, error TEXT)"
        )
        conn.execute(
            "INSERT INTO tasks (id, batch, status, benchmark, params, max_attempts, created_at)"
            " VALUES ('t-1', 'b', 'queued', 'python', '{}', 3, 1.0)"
        )
    with TaskQueue(db, verify=True) as q:
        task = q.get("t-1")
        assert task is not None and task.duplicates == 0 and task.foreign_result is None
        assert task.view().verifiable is True
        assert task.threads == 1  # the column came with its default
        _, (new,) = q.enqueue([TaskSpec("cython", {}, threads=2)])
        assert q.get(new).threads == 2  # type: ignore[union-attr]


def test_a_busy_port_is_refused_without_a_banner(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind((SERVE_HOST, 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        proc = run_cli(
            "serve",
            "--config",
            str(_config(tmp_path)),
            "--db",
            str(tmp_path / "q.db"),
            "--host",
            SERVE_HOST,
            "--port",
            str(port),
            cwd=tmp_path,
            timeout=60,
        )
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, text
    assert "Traceback" not in text and "partisim serve en" not in text
    assert "ya está en uso" in text and str(port) in text


def _start(tmp_path: Path, *extra: str, env: dict[str, str] | None = None) -> Spawned:
    import sys

    from helpers.processes import clean_env

    proc = Spawned("serve", tmp_path)
    proc.launch(
        [
            sys.executable,
            "-m",
            "partisim",
            "serve",
            "--config",
            str(_config(tmp_path)),
            "--db",
            str(tmp_path / "q.db"),
            *extra,
        ],
        cwd=tmp_path,
        env=clean_env(PYTHONUNBUFFERED="1", COLUMNS="250", **(env or {})),
    )
    return proc


def test_the_banner_comes_once_serve_listens_and_names_the_dashboard(tmp_path: Path) -> None:
    port = free_port_on(SERVE_HOST)
    with _start(tmp_path, "--host", SERVE_HOST, "--port", str(port)) as proc:
        line = wait_for(
            lambda: next((x for x in proc.log().splitlines() if "partisim serve en" in x), None), 30, "the banner"
        )
        # when the banner is out, the server answers
        with socket.create_connection((SERVE_HOST, port), timeout=5):
            pass
        assert f"http://{SERVE_HOST}:{port}" in line
        assert f"panel: http://{SERVE_HOST}:{port}/" in line
        assert "ATENCIÓN" not in proc.log()  # loopback: no warning
        assert proc.stop() == 0


def test_a_non_loopback_address_without_token_is_warned_about(tmp_path: Path) -> None:
    with _start(tmp_path, "--host", "0.0.0.0", "--port", "0") as proc:
        wait_for(lambda: "partisim serve en" in proc.log(), 30, "the banner")
        log = proc.log()
        assert "ATENCIÓN" in log and "sin token" in log and "--token-file" in log
        assert log.index("ATENCIÓN") < log.index("partisim serve en")
        assert proc.stop() == 0
    with _start(
        tmp_path, "--host", "0.0.0.0", "--port", "0", env={"PARTISIM_TOKEN": "s3creto-largo-de-prueba"}
    ) as proc:
        wait_for(lambda: "partisim serve en" in proc.log(), 30, "the banner")
        assert "ATENCIÓN" not in proc.log() and "s3creto-largo-de-prueba" not in proc.log()
        assert proc.stop() == 0
