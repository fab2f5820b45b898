"""Every configuration error: one Spanish message naming the file and the field, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from orch_support import ROOT, assert_clean_exit, run

GOOD_WORKER = {"id": "worker-01", "ip": "127.0.0.93", "port": 8080}


def _bad(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config_roto.json"
    path.write_text(text, encoding="utf-8")
    return path


def _cfg(workers: object, **extra: object) -> str:
    return json.dumps({"workers": workers, "orchestrator": {"timeout": 5}, **extra})


CASES = {
    # name: (file content or None for a missing file, words the message must contain)
    "missing_file": (None, ["no existe", "config_roto.json"]),
    "bad_json": ('{"workers": [', ["JSON inválido", "línea"]),
    "not_object": ("[1, 2]", ["workers"]),
    "no_workers_key": (json.dumps({"orchestrator": {}}), ["workers"]),
    "duplicate_id": (
        _cfg([GOOD_WORKER, {**GOOD_WORKER, "ip": "127.0.0.155"}]),
        ["workers[1].id", "duplicado", "worker-01"],
    ),
    "bad_address": (_cfg([{**GOOD_WORKER, "ip": "999.1.2.3"}]), ["workers[0].ip", "999.1.2.3"]),
    "bad_address_text": (_cfg([{**GOOD_WORKER, "ip": "mi-maquina"}]), ["workers[0].ip"]),
    "port_zero": (_cfg([{**GOOD_WORKER, "port": 0}]), ["workers[0].port"]),
    "port_too_big": (_cfg([{**GOOD_WORKER, "port": 70000}]), ["workers[0].port"]),
    "port_not_number": (_cfg([{**GOOD_WORKER, "port": "ochenta"}]), ["workers[0].port"]),
    "missing_ip": (_cfg([{"id": "worker-01", "port": 8080}]), ["workers[0].ip"]),
    "bad_timeout": (json.dumps({"workers": [GOOD_WORKER], "orchestrator": {"timeout": -1}}), ["orchestrator.timeout"]),
    # the ETAPA-6 fields and the credentials
    "host_and_ip_differ": (_cfg([{**GOOD_WORKER, "host": "127.0.0.155"}]), ["workers[0]", "host", "no coinciden"]),
    "bad_host": (_cfg([{"id": "w", "host": "999.0.0.1", "port": 8080}]), ["workers[0].ip", "999.0.0.1"]),
    "unknown_algorithm": (
        _cfg([{**GOOD_WORKER, "algorithms": ["python", "fortran"]}]),
        ["workers[0].algorithms", "fortran"],
    ),
    "empty_algorithms": (_cfg([{**GOOD_WORKER, "algorithms": []}]), ["workers[0].algorithms"]),
    "capacity_zero": (_cfg([{**GOOD_WORKER, "capacity": 0}]), ["workers[0].capacity"]),
    "tls_not_bool": (_cfg([{**GOOD_WORKER, "tls": "sí"}]), ["workers[0].tls"]),
    "token_and_file": (_cfg([{**GOOD_WORKER, "token": "abc", "token_file": "t.txt"}]), ["token", "no ambos"]),
    "token_with_space": (_cfg([{**GOOD_WORKER, "token": "a b"}]), ["workers[0].token", "espacios"]),
    "missing_token_file": (
        _cfg([{**GOOD_WORKER, "token_file": "no-existe.token"}]),
        ["worker-01.token_file", "no-existe.token"],
    ),
    "missing_ca_file": (
        json.dumps({"workers": [GOOD_WORKER], "orchestrator": {"ca_file": "no-existe.pem"}}),
        ["orchestrator.ca_file", "no-existe.pem"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_config_error_is_one_clear_message(tmp_path: Path, case: str, cli) -> None:
    content, words = CASES[case]
    path = tmp_path / "config_roto.json" if content is None else _bad(tmp_path, content)
    code, out, err = cli("ping", "--config", str(path))
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    message = " ".join(err.split())  # rich may wrap a long line
    assert message.startswith("Error:")
    assert "config_roto.json" in message
    for word in words:
        assert word in message, message


@pytest.mark.parametrize(
    "command",
    [["orchestrator"], ["ping"], ["status"], ["exec", "--worker", "worker-01"], ["demo"], ["check"]],
    ids=lambda c: c[0],
)
def test_every_command_takes_config_and_refuses_a_bad_one(tmp_path: Path, command: list[str], cli) -> None:
    path = _bad(tmp_path, _cfg([GOOD_WORKER, GOOD_WORKER]))
    code, _, err = cli(*command, "--config", str(path))
    assert code == 2
    assert "config_roto.json" in err and "duplicad" in err


@pytest.mark.parametrize("script", [["orchestrator.py"], ["test_communication.py", "--quick"]])
def test_root_scripts_refuse_a_bad_config(tmp_path: Path, script: list[str]) -> None:
    path = _bad(tmp_path, "{")
    proc = run([*script, "--config", str(path)], input="1\n")
    assert_clean_exit(proc, 2)
    assert "config_roto.json" in proc.stderr and "JSON inválido" in proc.stderr


def test_default_config_is_read_from_the_current_directory(tmp_path: Path, cli, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("ping")
    assert code == 2
    words = " ".join(err.split())
    assert "no existe el archivo de configuración config_workers.json" in words
    assert "partisim queue" in words  # where the workers of `serve --local` are seen instead


def test_shipped_config_lists_only_the_two_loopback_workers() -> None:
    data = json.loads((ROOT / "config_workers.json").read_text(encoding="utf-8"))
    assert data["workers"] == [
        {"id": "worker-01", "ip": "127.0.0.93", "port": 8080},
        {"id": "worker-02", "ip": "127.0.0.155", "port": 8080},
    ]
    assert set(data["orchestrator"]) >= {"timeout", "retry_attempts", "max_concurrent_tasks"}


def test_unknown_worker_in_exec_is_a_usage_error(tmp_path: Path, cli) -> None:
    path = _bad(tmp_path, _cfg([GOOD_WORKER]))
    code, _, err = cli("exec", "--config", str(path), "--worker", "worker-99")
    assert code == 2
    assert "worker-99" in err and "worker-01" in err


def test_an_etapa6_style_config_is_accepted(tmp_path: Path, cli) -> None:
    path = tmp_path / "config_workers.json"
    path.write_text(
        json.dumps(
            {
                "workers": [
                    {
                        "id": "worker-01",
                        "host": "127.0.0.93",
                        "port": 8080,
                        "capacity": 4,
                        "algorithms": ["python", "cython"],
                    },
                    {
                        "id": "worker-02",
                        "host": "127.0.0.155",
                        "port": 8080,
                        "capacity": 2,
                        "algorithms": ["benchmark.py"],
                    },
                ],
                "orchestrator": {"timeout": 1, "retry_attempts": 3, "max_concurrent_tasks": 4},
            }
        ),
        encoding="utf-8",
    )
    code, out, err = cli("ping", "--config", str(path), "--json")
    # valid (a bad configuration is 2): 0 or 1 only says whether something answers on
    # those addresses, which depends on the machine, not on the file
    assert code in (0, 1) and "Error" not in err, err
    assert {w["id"] for w in json.loads(out)} == {"worker-01", "worker-02"}
