"""The Dask settings: `--dask ADDRESS`, the config's ``dask`` section, the HPC job
script, what a missing install says, and what a Dask worker imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.cli import run_cli
from helpers.processes import clean_env, free_port_on

from partisim.errors import ConfigError
from partisim.fleet import JobqueueSettings, load_config, parse_dask_target
from partisim.serve.executors.dask.provision import jobqueue_cluster


def run_partisim(*args: str, cwd: Path, prelude: str = "") -> subprocess.CompletedProcess:
    """`partisim ARGS` in a fresh interpreter; ``prelude`` runs first (e.g. to hide a module)."""
    code = f"{prelude}\nimport sys\nfrom partisim.cli import main\nsys.exit(main({list(args)!r}))"
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        env=clean_env(COLUMNS="250"),
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    ("text", "kind", "address", "workers"),
    [
        ("tcp://127.0.0.1:8786", "scheduler", "tcp://127.0.0.1:8786", 0),
        ("127.0.0.1:8786", "scheduler", "tcp://127.0.0.1:8786", 0),
        ("local:2", "local", "local:2", 2),
        ("SLURM", "slurm", "slurm", 0),
        ("pbs", "pbs", "pbs", 0),
    ],
)
def test_addresses_are_read(text: str, kind: str, address: str, workers: int) -> None:
    target = parse_dask_target(text)
    assert (target.kind, target.address, target.workers) == (kind, address, workers)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("local:0", "entre 1 y 256"),
        ("local:dos", "entre 1 y 256"),
        ("http://127.0.0.1:8786", "use tcp://HOST:PUERTO, local:N, slurm o pbs"),
        ("tcp://127.0.0.1:70000", "puerto inválido"),
        ("sge", "use tcp://HOST:PUERTO"),
    ],
)
def test_bad_addresses_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_dask_target(text)


@pytest.mark.parametrize(
    ("section", "says"),
    [
        ({"address": "local:x"}, "dask.address: local:N necesita un número de workers"),
        ({"jobqueue": {"quee": "normal"}}, "dask.jobqueue.quee: parámetro desconocido"),
        ({"jobqueue": {"memory": "mucha"}}, "dask.jobqueue.memory: tamaño de memoria inválido 'mucha'"),
        ({"jobqueue": {"walltime": "2h"}}, "dask.jobqueue.walltime: tiempo máximo inválido '2h'"),
        ({"jobqueue": {"minimum_jobs": 5, "maximum_jobs": 2}}, "minimum_jobs (5) no puede superar maximum_jobs (2)"),
        ({"jobqueue": {"cores": 3, "processes": 2}}, "cores (3) debe ser múltiplo de processes (2)"),
        ({"task_timeout": 0}, "dask.task_timeout"),
    ],
)
def test_the_config_section_is_validated_in_spanish(tmp_path: Path, section: dict, says: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"dask": section}), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert says in str(caught.value) and str(path) in str(caught.value)


def test_a_config_with_a_dask_section_needs_no_workers(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"dask": {"address": "local:3"}}), encoding="utf-8")
    config = load_config(path)
    assert config.workers == []
    target = config.dask.target()
    assert target is not None and target.workers == 3
    assert config.dask.target("tcp://127.0.0.1:9999").address == "tcp://127.0.0.1:9999"  # --dask wins


def test_the_slurm_and_pbs_job_scripts_carry_the_resources_and_this_python(tmp_path: Path) -> None:
    logs = tmp_path / "registros"
    settings = JobqueueSettings(
        queue="normal",
        account="proyecto42",
        cores=4,
        processes=2,
        memory="8GB",
        walltime="02:30:00",
        minimum_jobs=0,
        maximum_jobs=3,
        prologue=["module load python/3.11"],
        directives=["--qos=baja"],
        scheduler_host="127.0.0.1",
        log_directory=str(logs),
    )
    slurm = jobqueue_cluster("slurm", settings)
    try:
        script = slurm.job_script()
    finally:
        slurm.close()
    for line in (
        "#SBATCH -p normal",
        "#SBATCH -A proyecto42",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --mem=8G",
        "#SBATCH -t 02:30:00",
        "#SBATCH --qos=baja",
        "module load python/3.11",
        "#SBATCH -J partisim-dask",
        f"#SBATCH -o {logs}/partisim-dask-%J.out",
        f"#SBATCH -e {logs}/partisim-dask-%J.err",
    ):
        assert line in script.splitlines(), (line, script)
    assert logs.is_dir()  # made before any job needs it
    command = next(line for line in script.splitlines() if "distributed.cli.dask_worker" in line)
    assert command.startswith(f"{sys.executable} -m distributed.cli.dask_worker tcp://127.0.0.1:")
    assert "--nthreads 2" in command and "--nworkers 2" in command
    # a loopback scheduler_host keeps the workers and their dashboards on it
    assert "--host 127.0.0.1" in command and "--dashboard-address 127.0.0.1:0" in command
    # the prologue comes before the worker starts
    assert script.index("module load python/3.11") < script.index(command)

    pbs = jobqueue_cluster("pbs", settings)
    try:
        script = pbs.job_script()
    finally:
        pbs.close()
    for line in ("#PBS -q normal", "#PBS -A proyecto42", "#PBS -l walltime=02:30:00"):
        assert line in script.splitlines(), (line, script)
    assert "ncpus=4" in script and f"{sys.executable} -m distributed.cli.dask_worker" in script


def test_without_dask_installed_serve_says_what_to_install(tmp_path: Path) -> None:
    hide = "import sys; sys.modules['distributed'] = None"
    result = run_partisim("serve", "--dask", "local:2", "--db", str(tmp_path / "q.db"), cwd=tmp_path, prelude=hide)
    assert result.returncode == 2, result.stderr
    assert "no está instalado" in result.stderr and "pip install 'partisim[dask]'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "q.db").exists()  # nothing started

    hide = "import sys; sys.modules['dask_jobqueue'] = None"
    result = run_partisim("serve", "--dask", "slurm", "--db", str(tmp_path / "q.db"), cwd=tmp_path, prelude=hide)
    assert result.returncode == 2
    assert "dask-jobqueue" in result.stderr and "pip install 'partisim[dask]'" in result.stderr


def test_serve_refuses_a_bad_address_or_an_absent_scheduler(tmp_path: Path) -> None:
    # refusals made before dask is imported or anything listens: in this process
    result = run_cli("serve", "--dask", "local:cero", cwd=tmp_path)
    assert result.returncode == 2 and "--dask: local:N necesita" in result.stderr

    port = free_port_on("127.0.0.1")
    result = run_partisim(
        "serve",
        "--dask",
        f"tcp://127.0.0.1:{port}",
        "--port",
        str(free_port_on("127.0.0.1")),
        "--db",
        str(tmp_path / "q.db"),
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert f"no hay un planificador Dask en tcp://127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr

    # without --dask, an empty worker list is still refused (and the message points at --dask)
    (tmp_path / "config.json").write_text('{"workers": []}', encoding="utf-8")
    result = run_cli("serve", "--config", "config.json", cwd=tmp_path)
    assert result.returncode == 2 and "está vacía" in result.stderr and "--dask" in result.stderr


def test_what_a_dask_worker_imports_holds_nothing_of_serve(tmp_path: Path) -> None:
    code = (
        "import sys, partisim.serve.executors.dask.remote\n"
        "print('\\n'.join(sorted(m for m in sys.modules if m.startswith('partisim') or m in "
        "('fastapi', 'httpx', 'sqlite3', 'uvicorn', 'rich'))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path, timeout=60
    ).stdout.split()
    allowed_roots = ("partisim.sim", "partisim.errors")
    packages = {"partisim", "partisim.serve", "partisim.serve.executors", "partisim.serve.executors.dask"}
    extra = [
        m
        for m in loaded
        if not (m.startswith(allowed_roots) or m in packages or m == "partisim.serve.executors.dask.remote")
    ]
    assert extra == []
