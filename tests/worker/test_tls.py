"""TLS for the worker (a self-signed certificate made by the test), anonymous probes that
tell only liveness while a token is set, and the warning for an open listener."""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from helpers.processes import clean_env
from helpers.workers import TINY, RunningWorker, start_worker

from partisim.errors import ConfigError
from partisim.worker.settings import WorkerSettings, build_settings, open_listener_warning

TOKEN = "tls-token-77c1"


def _trust(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


def self_signed(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A certificate for `host` (IP SAN) signed by its own key; (cert.pem, key.pem)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "partisim-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_worker(pki: tuple[Path, Path]) -> RunningWorker:
    cert, key = pki
    w = start_worker("127.0.0.1", None, "--capacity", "1", "--tls-cert", str(cert), "--tls-key", str(key),
                     env={"PARTISIM_TOKEN": TOKEN}, verify=str(cert))
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


def test_anonymous_probes_tell_only_liveness(tls_worker: RunningWorker, pki: tuple[Path, Path]) -> None:
    cert, _ = pki
    ping = httpx.get(tls_worker.url + "/ping", verify=_trust(cert), trust_env=False)
    health = httpx.get(tls_worker.url + "/health", verify=_trust(cert), trust_env=False)
    assert ping.status_code == 200 and health.status_code == 200
    assert set(ping.json()) == {"status", "timestamp", "message"} and ping.json()["status"] == "active"
    assert set(health.json()) == {"status", "timestamp"} and health.json()["status"] == "healthy"
    for text in (ping.text, health.text):
        assert "worker-127-0-0-1" not in text and "docker" not in text.lower() and "particle-simulation" not in text
    # a wrong token is anonymous too; the right one sees everything
    wrong = httpx.get(tls_worker.url + "/health", verify=_trust(cert), trust_env=False,
                      headers={"Authorization": "Bearer otro"})
    assert set(wrong.json()) == {"status", "timestamp"}
    with tls_worker.client() as c:
        full = c.get("/health").json()
        assert full["worker_id"] == "worker-127-0-0-1" and "docker_version" in full["checks"]["docker"]
        assert c.get("/ping").json()["worker_id"] == "worker-127-0-0-1"


def test_tls_settings_are_checked_before_start(pki: tuple[Path, Path], tmp_path: Path) -> None:
    cert, key = pki
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
    other_cert, _ = self_signed(tmp_path)  # a certificate that does not go with this key
    with pytest.raises(ConfigError, match="se corresponden"):
        build_settings({"tls_cert": str(other_cert), "tls_key": str(key)}, {})
    # and the command says so in Spanish, exit code 2, before listening anywhere
    out = subprocess.run([sys.executable, "-m", "partisim", "worker", "--host", "127.0.0.1", "--port", "0",
                          "--tls-cert", str(cert)], capture_output=True, text=True, timeout=60,
                         env=clean_env(), cwd=tmp_path)
    assert out.returncode == 2 and "falta --tls-key" in out.stderr and "Traceback" not in out.stderr


def test_open_listener_without_token_is_warned_in_spanish(tmp_path: Path) -> None:
    assert open_listener_warning(WorkerSettings(host="0.0.0.0"))
    assert "todas las interfaces" in (open_listener_warning(WorkerSettings(host="::")) or "")
    assert open_listener_warning(WorkerSettings(host="worker-01.example"))
    for quiet in (WorkerSettings(host="127.0.0.93"), WorkerSettings(host="::1"), WorkerSettings(host="localhost"),
                  WorkerSettings(host="0.0.0.0", token="t")):
        assert open_listener_warning(quiet) is None
    # the real command: 192.0.2.1 (TEST-NET, not this machine) is warned about first, then cannot be bound
    argv = [sys.executable, "-m", "partisim", "worker", "--host", "192.0.2.1", "--port", "0", "--runner", "process"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=clean_env(), cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert "WARNING" in out.stderr and "SIN token" in out.stderr and "PARTISIM_TOKEN" in out.stderr
    assert out.stderr.index("SIN token") < out.stderr.index("no se puede escuchar")
    with_token = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                                env=clean_env(PARTISIM_TOKEN=TOKEN), cwd=tmp_path)
    assert with_token.returncode == 2 and "SIN token" not in with_token.stderr


def test_loopback_worker_says_nothing_alarming(tls_worker: RunningWorker) -> None:
    assert "SIN token" not in tls_worker.log()
    status = httpx.get(tls_worker.url + "/status", verify=tls_worker.verify, trust_env=False,
                       headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert json.dumps(status, allow_nan=False)  # strict JSON through TLS too
