"""Worker settings from options, environment and defaults; bad values are clear errors (exit 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers.cli import run_cli
from helpers.processes import clean_env

from partisim.errors import ConfigError
from partisim.worker.settings import Limits, build_settings, cpu_count


def test_defaults() -> None:
    s = build_settings({}, {})
    assert (s.host, s.port, s.runner, s.worker_id, s.token) == ("0.0.0.0", 8080, "auto", None, None)
    assert s.capacity == cpu_count() and s.effective_queue_size == 4 * s.capacity
    assert s.limits == Limits() and s.max_timeout == 600 and s.grace == 30
    assert s.docker_image == "particle-simulation:latest" and s.config_path == "config_workers.json"


def test_option_beats_environment_beats_default() -> None:
    env = {
        "PARTISIM_PORT": "9000",
        "WORKER_ID": "env-id",
        "PARTISIM_CAPACITY": "3",
        "PARTISIM_MAX_WORK": "1e8",
        "PARTISIM_TOKEN": "tok-0123456789abcdef",
        "PARTISIM_RUNNER": "Docker",
    }
    s = build_settings({"port": "9100"}, env)
    assert (s.port, s.worker_id, s.capacity, s.limits.max_work, s.token, s.runner) == (
        9100,
        "env-id",
        3,
        100_000_000,
        "tok-0123456789abcdef",
        "docker",
    )
    assert "tok-0123456789abcdef" not in repr(s)  # the token never shows up in a repr or a log line
    assert build_settings({"worker_id": "cli-id"}, env).worker_id == "cli-id"


def test_token_file_beats_token_variable(tmp_path: Path) -> None:
    f = tmp_path / "t"
    f.write_text("from-file-0123456789\n", encoding="utf-8")
    token = build_settings({"token_file": str(f)}, {"PARTISIM_TOKEN": "from-env-0123456789"}).token
    assert token == "from-file-0123456789"
    f.write_text("  \n", encoding="utf-8")
    with pytest.raises(ConfigError, match="vacío"):
        build_settings({"token_file": str(f)}, {})
    with pytest.raises(ConfigError, match="no se puede leer"):
        build_settings({"token_file": str(tmp_path / "none")}, {})


@pytest.mark.parametrize(
    "values,needle",
    [
        ({"port": "ochenta"}, "--port"),
        ({"port": "70000"}, "--port"),
        ({"capacity": "0"}, "--capacity"),
        ({"runner": "kubernetes"}, "--runner"),
        ({"max_timeout": "nan"}, "--max-timeout"),
        ({"max_timeout": "-1"}, "--max-timeout"),
        ({"worker_id": "../etc"}, "--worker-id"),
        ({"max_work": "1.5"}, "--max-work"),
        ({"docker_memory": "mucha"}, "--docker-memory"),
    ],
)
def test_bad_values_name_the_option(values: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace("-", r"\-")):
        build_settings(values, {})


def test_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="PARTISIM_CAPACITY"):
        build_settings({}, {"PARTISIM_CAPACITY": "muchas"})


def _worker(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "partisim", "worker", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(**(env or {})),
        cwd=cwd,
    )


def test_cli_usage_errors_exit_2_in_spanish(tmp_path: Path) -> None:
    # refused while the settings are read, before anything listens: in this process
    r = run_cli("worker", "--capacity", "cero", "--host", "127.0.0.1", cwd=tmp_path)
    assert r.returncode == 2 and "--capacity" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("worker", "--host", "127.0.0.1", env={"PARTISIM_PORT": "x"}, cwd=tmp_path)
    assert r.returncode == 2 and "PARTISIM_PORT" in r.stderr


def test_busy_port_is_a_clear_error(worker, tmp_path: Path) -> None:
    r = _worker("--host", "127.0.0.1", "--port", str(worker.port), "--runner", "process", cwd=tmp_path)
    assert r.returncode == 2 and "ya está en uso" in r.stderr and "Traceback" not in r.stderr
