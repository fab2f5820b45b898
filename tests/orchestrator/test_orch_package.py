"""package_project.sh: exactly the files a worker or orchestrator machine needs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import httpx
from helpers.processes import Spawned, clean_env, free_port_on
from orch_support import ROOT

NAME = re.compile(r"^particle-simulation-ETAPA4-\d{8}-\d{6}\.tar\.gz$")

WANTED = [
    "README.md",
    "Dockerfile",
    "Dockerfile.worker",
    ".dockerignore",
    "requirements_worker.txt",
    "config_workers.json",
    "orchestrator.py",
    "test_communication.py",
    "worker_service.py",
    "benchmark.py",
    "benchmark_cython.py",
    "setup.py",
    "pyproject.toml",
    "start_worker.sh",
    "start_worker.bat",
    "package_project.sh",
    "src/partisim/__init__.py",
    "src/partisim/py.typed",
    "src/partisim/sim/engines/_cython.pyx",
    "src/partisim/serve/web/static/app.js",
    "src/partisim/worker/app.py",
    "docs/modelo.md",
]
UNWANTED = [
    ".git/HEAD",
    ".venv/bin/python",
    "tests/test_x.py",
    "bench/x.py",
    "docs/notes.txt",
    "build/lib/x.py",
    "dist/partisim-0.1.0.whl",
    ".pytest_cache/v/x",
    "notes.txt",
    "partisim.db",
    "partisim.db-wal",
    "particle-simulation-ETAPA4-20200101-000000.tar.gz",
    "src/partisim/__pycache__/x.cpython-311.pyc",
    "src/partisim/sim/engines/_cython.c",
    "src/partisim/sim/engines/_cython.cpython-311-x86_64-linux-gnu.so",
    "src/partisim.egg-info/PKG-INFO",
    "src/partisim/queue.db",
    "src/partisim/worker.log",
]


def _package(project: Path, out: Path, *, via_env: bool = False) -> tuple[subprocess.CompletedProcess[str], Path]:
    out.mkdir(parents=True, exist_ok=True)
    args = ["bash", str(project / "package_project.sh")]
    env = dict(os.environ)
    if via_env:
        env["PACKAGE_OUTPUT_DIR"] = str(out)
    else:
        args += ["-o", str(out)]
    proc = subprocess.run(args, capture_output=True, text=True, cwd=project, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    tarballs = list(out.iterdir())
    assert len(tarballs) == 1 and NAME.match(tarballs[0].name), tarballs
    return proc, tarballs[0]


def test_packs_what_is_needed_and_nothing_else(tmp_path: Path) -> None:
    project = tmp_path / "proyecto"
    for rel in WANTED + UNWANTED:
        path = project / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {rel}\n")
    shutil.copy(ROOT / "package_project.sh", project / "package_project.sh")

    proc, tarball = _package(project, tmp_path / "salida")
    with tarfile.open(tarball) as tar:
        members = sorted(m.name for m in tar.getmembers())
    assert members == sorted(f"TAREA/{rel}" for rel in WANTED)  # one folder, as in the users' guide
    for rel in WANTED:
        assert f"  {rel}" in proc.stdout  # it prints what it packed
    assert tarball.name in proc.stdout


def test_bad_output_dir_is_a_usage_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        ["bash", str(ROOT / "package_project.sh"), "-o", str(tmp_path / "no-existe")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "no existe" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_package_of_this_repository_runs_a_worker(tmp_path: Path) -> None:
    _, tarball = _package(ROOT, tmp_path / "salida", via_env=True)
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
        machine = tmp_path / "maquina"
        machine.mkdir()
        tar.extractall(machine)
    assert [p.name for p in machine.iterdir()] == ["TAREA"]
    target = machine / "TAREA"  # the users' `cd TAREA/`
    names = {n.removeprefix("TAREA/") for n in names}
    for rel in [
        "config_workers.json",
        "orchestrator.py",
        "test_communication.py",
        "pyproject.toml",
        "setup.py",
        "package_project.sh",
        "src/partisim/worker/app.py",
        "src/partisim/sim/engines/_cython.pyx",
    ]:
        assert rel in names, rel
    for rel in [
        "worker_service.py",
        "start_worker.sh",
        "start_worker.bat",
        "requirements_worker.txt",
        "Dockerfile",
        "Dockerfile.worker",
        "README.md",
    ]:
        if (ROOT / rel).exists():
            assert rel in names, rel
    assert not [
        n
        for n in names
        if n.startswith((".git/", ".venv/", "tests/"))
        or "__pycache__" in n
        or n.endswith((".so", ".pyc", ".db", ".tar.gz"))
    ]

    # ./start_worker.sh from the extracted tree, as on a worker machine, with the
    # extracted src/ first on the path. It reuses this test run's virtual environment
    # (--venv ... --no-install) instead of a pip install, to keep the test fast.
    env = clean_env(PYTHONPATH=str(target / "src"))
    where = subprocess.run(
        [sys.executable, "-c", "import partisim; print(partisim.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=target,
        timeout=30,
    )
    assert where.stdout.strip().startswith(str(target)), where
    port = free_port_on("127.0.0.1")
    worker = Spawned("start_worker", tmp_path)
    worker.launch(
        [
            "bash",
            "./start_worker.sh",
            "--venv",
            sys.prefix,
            "--no-install",
            "--no-build",
            "--runner",
            "process",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--worker-id",
            "worker-tar",
        ],
        cwd=target,
        env=env,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        answer = worker.wait_ready(lambda: httpx.get(url + "/ping", timeout=2, trust_env=False).json(), 30)
        assert answer["worker_id"] == "worker-tar"
        result = httpx.post(
            url + "/execute",
            json={"benchmark": "benchmark.py", "params": {"NUM_PARTICULAS": 20, "NUM_PASOS": 20, "SEMILLA": 1}},
            timeout=60,
            trust_env=False,
        ).json()
        assert result["status"] == "success" and result["engine"] == "python"
    finally:
        worker.kill()  # start_worker.sh exec's the worker: this is the worker itself
    assert "Worker ID: worker-tar" in worker.log()
