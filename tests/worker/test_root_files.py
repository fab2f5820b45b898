"""The root entry points users know: worker_service.py, start_worker.sh, requirements_worker.txt."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from helpers.processes import clean_env, free_port_on, wait_for

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    return clean_env(PYTHONUNBUFFERED="1")


def _serve_and_stop(argv: list[str], port: int, cwd: Path, log: Path) -> str:
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=_env())

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"exited with {proc.returncode}:\n{log.read_text()}")
        return httpx.get(f"http://127.0.0.1:{port}/ping", trust_env=False).status_code == 200

    try:
        wait_for(ready, 120, "worker to answer")
        r = httpx.post(
            f"http://127.0.0.1:{port}/execute",
            trust_env=False,
            timeout=60,
            json={"benchmark": "benchmark_cython.py", "params": {"NUM_PARTICULAS": 20, "NUM_PASOS": 5}},
        )
        assert r.status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return log.read_text(encoding="utf-8", errors="replace")


def test_worker_service_py_is_partisim_worker(tmp_path: Path) -> None:
    port = free_port_on("127.0.0.1")
    text = _serve_and_stop(
        [
            sys.executable,
            str(ROOT / "worker_service.py"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--runner",
            "process",
            "--capacity",
            "1",
        ],
        port,
        tmp_path,
        tmp_path / "log",
    )
    assert f"Escuchando en http://127.0.0.1:{port}" in text and "Capacidad: 1" in text
    help_text = subprocess.run(
        [sys.executable, str(ROOT / "worker_service.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
    ).stdout
    assert "--worker-id" in help_text and "WORKER_ID" in help_text and "--max-timeout" in help_text


def test_start_worker_sh_help_and_errors() -> None:
    r = subprocess.run(["bash", str(ROOT / "start_worker.sh"), "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "Uso: ./start_worker.sh" in r.stdout and "--worker-id" in r.stdout
    bad = subprocess.run(
        ["bash", str(ROOT / "start_worker.sh"), "--runner", "magia"], capture_output=True, text=True, timeout=30
    )
    assert bad.returncode == 2 and "--runner debe ser" in bad.stderr


def test_start_worker_sh_detects_id_and_starts(tmp_path: Path) -> None:
    """From a copy of the project's root files: reuses an existing environment (--no-install), names
    itself from config_workers.json, and execs the service (SIGTERM reaches the worker: exit 0)."""
    copy = tmp_path / "proyecto"
    copy.mkdir()
    for name in ("start_worker.sh", "requirements_worker.txt", "worker_service.py"):
        shutil.copy2(ROOT / name, copy / name)
    port = free_port_on("127.0.0.93")
    (copy / "config_workers.json").write_text(
        json.dumps({"workers": [{"id": "worker-01", "ip": "127.0.0.93", "port": port}]}), encoding="utf-8"
    )
    venv = Path(sys.executable).parent.parent
    argv = [
        "bash",
        "start_worker.sh",
        "--venv",
        str(venv),
        "--no-install",
        "--host",
        "127.0.0.93",
        "--port",
        str(port),
        "--runner",
        "process",
        "--",
        "--capacity",
        "1",
    ]
    with open(tmp_path / "log", "wb") as out:
        proc = subprocess.Popen(argv, cwd=copy, stdout=out, stderr=subprocess.STDOUT, env=_env())
    try:
        ping = wait_for(
            lambda: httpx.get(f"http://127.0.0.93:{port}/ping", trust_env=False).json(), 120, "start_worker.sh's worker"
        )
        assert ping["worker_id"] == "worker-01"
        assert httpx.get(f"http://127.0.0.93:{port}/status", trust_env=False).json()["capacity"] == 1
        out = (tmp_path / "log").read_text(encoding="utf-8")
        assert "IP detectada: 127.0.0.93" in out and "Worker ID: worker-01" in out
        proc.send_signal(signal.SIGTERM)  # exec'd: the signal reaches the worker itself
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_requirements_worker_installs_this_package() -> None:
    lines = [
        ln.strip()
        for ln in (ROOT / "requirements_worker.txt").read_text(encoding="utf-8").splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    assert lines == ["."]
    text = (ROOT / "start_worker.bat").read_bytes()
    assert b"\r\n" in text and b"requirements_worker.txt" in text and b"--whoami" in text
