"""TLS for the worker (a self-signed certificate made by the test), anonymous probes that
tell only liveness while a token is set, and the warning for an open listener."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from helpers.processes import clean_env
from helpers.tls import Certificate, make_certificate
from helpers.workers import TINY, RunningWorker, start_worker

from partisim.errors import ConfigError
from partisim.worker.settings import WorkerSettings, build_settings, open_listener_warning

TOKEN = "tls-token-77c1-5e0b"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return make_certificate(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_worker(pki: Certificate) -> RunningWorker:
    w = start_worker(
        "127.0.0.1",
        None,
        "--capacity",
        "1",
        "--tls-cert",
        str(pki.cert),
        "--tls-key",
        str(pki.key),
        env={"PARTISIM_TOKEN": TOKEN},
        verify=pki.context(),
    )
    yield w
    w.stop()


def test_worker_serves_https_with_its_certificate(tls_worker: RunningWorker) -> None:
    assert tls_worker.url.startswith("https://")
    assert f"Escuchando en {tls_worker.url}" in tls_worker.log() and "TLS: activado" in tls_worker.log()
    with tls_worker.client() as c:  # trusts the test's certificate, sends the token
        status = c.get("/status").json()
        assert status["tls"] is True and status["auth_required"] is True
        r = c.post("/execute", json={"benchmark": "benchmark_cython.py", "params": TINY})
        assert r.status_code == 200 and r.json()["engine"] == "cython"
    # a client that does not trust the certificate is refused by TLS itself
    with pytest.raises(httpx.ConnectError):
        httpx.get(tls_worker.url + "/ping", trust_env=False, timeout=5)
    # plain http on the TLS port gets no answer of ours
    with pytest.raises(httpx.HTTPError):
        r = httpx.get(tls_worker.url.replace("https://", "http://") + "/ping", trust_env=False, timeout=5)
        r.json()


def test_partisim_client_reaches_the_https_worker_with_a_ca_file(tls_worker: RunningWorker, pki: Certificate) -> None:
    from partisim.errors import WorkerUnavailable
    from partisim.fleet.client import WorkerClient
    from partisim.protocol import ExecuteRequest

    with WorkerClient(tls_worker.url, token=TOKEN, ca_file=str(pki.cert)) as c:
        assert c.ping().worker_id == "worker-127-0-0-1"
        assert c.status().tls is True
        assert c.execute(ExecuteRequest(benchmark="benchmark.py", params=TINY)).engine == "python"
    with WorkerClient(tls_worker.url, token=TOKEN) as c, pytest.raises(WorkerUnavailable):
        c.ping()  # the system's CAs do not know the test's certificate


def test_anonymous_probes_tell_only_liveness(tls_worker: RunningWorker, pki: Certificate) -> None:
    ping = httpx.get(tls_worker.url + "/ping", verify=pki.context(), trust_env=False)
    health = httpx.get(tls_worker.url + "/health", verify=pki.context(), trust_env=False)
    assert ping.status_code == 200 and health.status_code == 200
    assert set(ping.json()) == {"status", "timestamp", "message"} and ping.json()["status"] == "active"
    assert set(health.json()) == {"status", "timestamp"} and health.json()["status"] == "healthy"
    for text in (ping.text, health.text):
        assert "worker-127-0-0-1" not in text and "docker" not in text.lower() and "particle-simulation" not in text
    # a wrong token is anonymous too; the right one sees everything
    wrong = httpx.get(
        tls_worker.url + "/health", verify=pki.context(), trust_env=False, headers={"Authorization": "Bearer otro"}
    )
    assert set(wrong.json()) == {"status", "timestamp"}
    with tls_worker.client() as c:
        full = c.get("/health").json()
        assert full["worker_id"] == "worker-127-0-0-1" and "docker_version" in full["checks"]["docker"]
        assert c.get("/ping").json()["worker_id"] == "worker-127-0-0-1"


def test_tls_settings_are_checked_before_start(pki: Certificate, tmp_path: Path) -> None:
    cert, key = pki.cert, pki.key
    by_env = build_settings({}, {"PARTISIM_TLS_CERT": str(cert), "PARTISIM_TLS_KEY": str(key)})
    assert (by_env.tls_cert, by_env.tls_key, by_env.scheme) == (str(cert), str(key), "https")
    with pytest.raises(ConfigError, match="falta --tls-key"):
        build_settings({"tls_cert": str(cert)}, {})
    with pytest.raises(ConfigError, match="falta --tls-cert"):
        build_settings({}, {"PARTISIM_TLS_KEY": str(key)})
    with pytest.raises(ConfigError, match="no existe"):
        build_settings({"tls_cert": str(tmp_path / "nada.pem"), "tls_key": str(key)}, {})
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("esto no es un certificado\n")
    with pytest.raises(ConfigError, match="--tls-cert/--tls-key"):
        build_settings({"tls_cert": str(garbage), "tls_key": str(key)}, {})
    other_cert = make_certificate(tmp_path, stem="otro").cert  # a certificate that does not go with this key
    with pytest.raises(ConfigError, match="se corresponden"):
        build_settings({"tls_cert": str(other_cert), "tls_key": str(key)}, {})
    # and the command says so in Spanish, exit code 2, before listening anywhere
    out = subprocess.run(
        [sys.executable, "-m", "partisim", "worker", "--host", "127.0.0.1", "--port", "0", "--tls-cert", str(cert)],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
        cwd=tmp_path,
    )
    assert out.returncode == 2 and "falta --tls-key" in out.stderr and "Traceback" not in out.stderr


def test_open_listener_without_token_is_warned_in_spanish(tmp_path: Path) -> None:
    assert open_listener_warning(WorkerSettings(host="0.0.0.0"))
    assert "todas las interfaces" in (open_listener_warning(WorkerSettings(host="::")) or "")
    assert open_listener_warning(WorkerSettings(host="worker-01.example"))
    for quiet in (
        WorkerSettings(host="127.0.0.93"),
        WorkerSettings(host="::1"),
        WorkerSettings(host="localhost"),
        WorkerSettings(host="0.0.0.0", token="t"),
    ):
        assert open_listener_warning(quiet) is None
    # the real command: 192.0.2.1 (TEST-NET, not this machine) is warned about first, then cannot be bound
    argv = [sys.executable, "-m", "partisim", "worker", "--host", "192.0.2.1", "--port", "0", "--runner", "process"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=clean_env(), cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert "WARNING" in out.stderr and "SIN token" in out.stderr and "PARTISIM_TOKEN" in out.stderr
    assert out.stderr.index("SIN token") < out.stderr.index("no se puede escuchar")
    with_token = subprocess.run(
        argv, capture_output=True, text=True, timeout=60, env=clean_env(PARTISIM_TOKEN=TOKEN), cwd=tmp_path
    )
    assert with_token.returncode == 2 and "SIN token" not in with_token.stderr


def test_loopback_worker_says_nothing_alarming(tls_worker: RunningWorker) -> None:
    assert "SIN token" not in tls_worker.log()
    status = httpx.get(
        tls_worker.url + "/status",
        verify=tls_worker.verify,
        trust_env=False,
        headers={"Authorization": f"Bearer {TOKEN}"},
    ).json()
    assert json.dumps(status, allow_nan=False)  # strict JSON through TLS too
