"""Identity by IP: config_workers.json entry for the bound address, else worker-<ip>, unless told."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from helpers.processes import clean_env, free_port_on

from partisim.errors import ConfigError
from partisim.fleet import bound_addresses, fallback_id, local_addresses, resolve_identity


def _config(path: Path, port: int) -> Path:
    path.write_text(
        json.dumps(
            {
                "workers": [
                    {"id": "worker-01", "ip": "127.0.0.93", "port": port},
                    {"id": "worker-02", "ip": "127.0.0.155", "port": port},
                ],
                "orchestrator": {"timeout": 5, "retry_attempts": 3, "max_concurrent_tasks": 4},
            }
        ),
        encoding="utf-8",
    )
    return path


def test_two_workers_name_themselves_from_config(fresh_worker, tmp_path: Path) -> None:
    port = free_port_on("127.0.0.93", "127.0.0.155")
    _config(tmp_path / "config_workers.json", port)
    a = fresh_worker(host="127.0.0.93", port=port, cwd=tmp_path)  # default --config: ./config_workers.json
    b = fresh_worker(host="127.0.0.155", port=port, cwd=tmp_path)
    for w, expected in ((a, "worker-01"), (b, "worker-02")):
        ping = httpx.get(w.url + "/ping", trust_env=False).json()
        status = httpx.get(w.url + "/status", trust_env=False).json()
        assert ping["worker_id"] == status["worker_id"] == expected
        assert status["address"] == f"{w.host}:{port}"
        assert f"[{expected}]" in w.log() and "config_workers.json" in w.log()


def test_address_not_in_config_gets_dashed_ip(fresh_worker, tmp_path: Path) -> None:
    _config(tmp_path / "config_workers.json", 8080)
    w = fresh_worker(host="127.0.0.5", cwd=tmp_path)
    assert httpx.get(w.url + "/ping", trust_env=False).json()["worker_id"] == "worker-127-0-0-5"


def test_explicit_id_wins(fresh_worker, tmp_path: Path) -> None:
    port = free_port_on("127.0.0.93")
    _config(tmp_path / "config_workers.json", port)
    by_flag = fresh_worker("--worker-id", "mi-worker", host="127.0.0.93", port=port, cwd=tmp_path)
    assert httpx.get(by_flag.url + "/ping", trust_env=False).json()["worker_id"] == "mi-worker"
    by_flag.stop()
    by_env = fresh_worker(host="127.0.0.93", port=port, cwd=tmp_path, env={"WORKER_ID": "desde-env"})
    assert httpx.get(by_env.url + "/ping", trust_env=False).json()["worker_id"] == "desde-env"


def _whoami(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "partisim", "worker", "--whoami", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(**(env or {})),
        cwd=cwd,
    )


def test_whoami_precedence(tmp_path: Path) -> None:
    _config(tmp_path / "config_workers.json", 8080)
    assert _whoami("--host", "127.0.0.93", cwd=tmp_path).stdout.split() == ["worker-01", "127.0.0.93"]
    assert _whoami("--host", "127.0.0.93", env={"WORKER_ID": "env-id"}, cwd=tmp_path).stdout.split()[0] == "env-id"
    flag = _whoami("--host", "127.0.0.93", "--worker-id", "flag-id", env={"WORKER_ID": "env-id"}, cwd=tmp_path)
    assert flag.stdout.split()[0] == "flag-id"


@pytest.mark.parametrize(
    "content,needle",
    [
        ("{not json", "JSON inválido"),
        ('{"workers": [{"id": "a", "ip": "999.1.1.1", "port": 1}]}', "workers[0].ip"),
        (
            '{"workers": [{"id": "a", "ip": "127.0.0.1", "port": 1}, {"id": "a", "ip": "127.0.0.2", "port": 1}]}',
            "duplicado",
        ),
    ],
)
def test_invalid_config_stops_with_clear_message(tmp_path: Path, content: str, needle: str) -> None:
    (tmp_path / "config_workers.json").write_text(content, encoding="utf-8")
    r = _whoami("--host", "127.0.0.93", cwd=tmp_path)
    assert r.returncode == 2 and needle in r.stderr and "config_workers.json" in r.stderr
    assert "Traceback" not in r.stderr


def test_explicit_missing_config_is_an_error_default_missing_is_fine(tmp_path: Path) -> None:
    r = _whoami("--host", "127.0.0.93", "--config", str(tmp_path / "nada.json"), cwd=tmp_path)
    assert r.returncode == 2 and "nada.json" in r.stderr
    ok = _whoami("--host", "127.0.0.93", cwd=tmp_path)
    assert ok.returncode == 0 and ok.stdout.split()[0] == "worker-127-0-0-93"


def test_any_address_uses_interfaces_loopback_last(tmp_path: Path) -> None:
    addresses = local_addresses()
    assert addresses[-1] == "127.0.0.1" or all(a.startswith("127.") for a in addresses)
    assert bound_addresses("0.0.0.0") == addresses
    assert bound_addresses("localhost") == ["127.0.0.1"]
    ident = resolve_identity("0.0.0.0", 8080, config_path=str(tmp_path / "absent.json"))
    assert ident.worker_id == fallback_id(addresses[0]) and ident.source == "dirección"
    # a config naming this machine's loopback address names a worker bound to 0.0.0.0
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"workers": [{"id": "local", "ip": "127.0.0.1", "port": 8080}]}), encoding="utf-8")
    assert resolve_identity("0.0.0.0", 8080, config_path=str(cfg)).worker_id == "local"


def test_port_breaks_ties_between_entries_on_one_address(tmp_path: Path) -> None:
    cfg = tmp_path / "c.json"
    cfg.write_text(
        json.dumps(
            {"workers": [{"id": "a", "ip": "127.0.0.93", "port": 8080}, {"id": "b", "ip": "127.0.0.93", "port": 8081}]}
        ),
        encoding="utf-8",
    )
    assert resolve_identity("127.0.0.93", 8081, config_path=str(cfg)).worker_id == "b"
    assert resolve_identity("127.0.0.93", 9999, config_path=str(cfg)).worker_id == "a"
    with pytest.raises(ConfigError):
        resolve_identity("127.0.0.93", 8080, config_path=str(tmp_path / "x.json"), config_explicit=True)
