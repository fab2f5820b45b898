"""The demo: a worker dying mid-way, and `partisim demo --local K` on a fresh machine."""

from __future__ import annotations

import io
import re
import socket
from pathlib import Path

from orch_support import PtySession, assert_clean_exit, clean, run
from rich.console import Console

from partisim.fleet import load_config
from partisim.fleet.health import ping_all
from partisim.orchestrator.demo import run_demo
from partisim.sim import parse_params


def _refuses(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_worker_dying_between_ping_and_tasks_is_reported(fresh_pair) -> None:
    config = load_config(fresh_pair.config)
    healths = ping_all(config, with_status=True)
    assert [h.state for h in healths] == ["active", "active"]
    fresh_pair.b.kill()
    buffer = io.StringIO()
    report = run_demo(
        config, Console(file=buffer, width=200), healths=healths, params=parse_params({"particles": 50, "steps": 100})
    )
    rows = {row.worker_id: row for row in report.rows}
    assert rows["worker-01"].python.ok and rows["worker-01"].cython.ok
    assert rows["worker-01"].checksums_match is True
    assert "worker-02 no responde" in (rows["worker-02"].python.error or "")
    assert "worker-02 no responde" in (rows["worker-02"].cython.error or "")
    assert report.exit_code() == 1
    out = buffer.getvalue()
    assert "Tarea fallida" in out and "Demo terminada" in out


def test_demo_local_starts_and_stops_its_workers(tmp_path: Path) -> None:
    proc = run(["demo", "--local", "2", "-n", "40", "-s", "100"], cwd=tmp_path)
    assert_clean_exit(proc, 0)
    urls = re.findall(r"Worker local (local-0\d) en (http://127\.0\.0\.1:\d+)", proc.stdout)
    assert [u[0] for u in urls] == ["local-01", "local-02"]
    assert "Todos los resultados coinciden" in proc.stdout
    assert "Workers locales detenidos." in proc.stdout
    assert all(_refuses(url) for _, url in urls)
    assert list(tmp_path.iterdir()) == []  # nothing left behind in the user's folder


def test_demo_without_config_file_runs_locally(tmp_path: Path) -> None:
    proc = run(["demo", "-n", "30", "-s", "50"], cwd=tmp_path)
    assert_clean_exit(proc, 0)
    assert "No existe config_workers.json" in proc.stdout
    assert len(re.findall(r"Worker local local-0\d", proc.stdout)) == 2
    assert "Comparación Python vs Cython" in proc.stdout


def test_ctrl_c_during_local_demo_stops_the_workers(tmp_path: Path) -> None:
    # Far too long to finish: the pure-Python run is still going when we press Ctrl-C.
    session = PtySession(["demo", "--local", "1", "-n", "3000", "-s", "1000000"])
    try:
        out = session.expect("Ejecutando Python y Cython")
        url = re.search(r"Worker local local-01 en (http://127\.0\.0\.1:\d+)", out).group(1)
        session.send("\x03")
        assert session.wait(timeout=30) == 130
        out = clean(session.buffer)
        assert "Workers locales detenidos." in out
        assert "Traceback" not in out
        assert _refuses(url)
    finally:
        session.close()
