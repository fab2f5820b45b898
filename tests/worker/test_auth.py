"""Bearer token: everything but /ping and /health needs it; 401 otherwise; never logged or echoed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers.inprocess import worker_app
from helpers.processes import wait_for
from helpers.workers import TINY, RunningWorker, start_worker

TOKEN = "s3cr3t-token-Zx81"


@pytest.fixture(scope="module")
def secured_app() -> Iterator[httpx.Client]:
    """The same worker app in this process: the refusals need no worker process."""
    with worker_app(token=TOKEN) as client:
        yield client


@pytest.fixture(scope="module")
def secured():
    w = start_worker("127.0.0.1", None, "--capacity", "1", env={"PARTISIM_TOKEN": TOKEN})
    yield w
    w.stop()


PROTECTED = [
    ("GET", "/status"),
    ("POST", "/execute"),
    ("POST", "/tasks"),
    ("GET", "/tasks/x"),
    ("DELETE", "/tasks/x"),
    ("GET", "/history"),
    ("GET", "/metrics"),
    ("GET", "/docs"),
    ("GET", "/openapi.json"),
    ("GET", "/no-such-route"),
]


@pytest.mark.parametrize("method,path", PROTECTED)
@pytest.mark.parametrize(
    "header", [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer", f"Bearer {TOKEN[:-1]}"]
)
def test_protected_paths_need_the_token(secured_app: httpx.Client, method: str, path: str, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    r = secured_app.request(method, path, headers=headers, json={"benchmark": "cython", "params": TINY})
    assert r.status_code == 401
    assert r.json()["status"] == "unauthorized" and r.headers["www-authenticate"] == "Bearer"
    assert TOKEN not in r.text


def test_open_paths_and_right_token(secured: RunningWorker) -> None:
    assert httpx.get(secured.url + "/ping", trust_env=False).status_code == 200
    assert httpx.get(secured.url + "/health", trust_env=False).status_code == 200
    good = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.get(secured.url + "/status", headers=good, trust_env=False).json()["auth_required"] is True
    r = httpx.post(
        secured.url + "/execute", headers=good, json={"benchmark": "cython", "params": TINY}, trust_env=False
    )
    assert r.status_code == 200 and TOKEN not in r.text
    lower = {"Authorization": f"bearer {TOKEN}"}  # the scheme is case-insensitive
    assert httpx.get(secured.url + "/history", headers=lower, trust_env=False).status_code == 200


def test_client_with_token(secured: RunningWorker) -> None:
    from partisim.errors import AuthError
    from partisim.fleet.client import WorkerClient
    from partisim.protocol import ExecuteRequest

    with WorkerClient(secured.url, token=TOKEN) as c:
        assert c.status().worker_id == "worker-127-0-0-1"
        assert c.execute(ExecuteRequest(benchmark="benchmark_cython.py", params=TINY)).status == "success"
    with WorkerClient(secured.url) as c, pytest.raises(AuthError):
        c.status()


def test_token_never_logged(secured: RunningWorker) -> None:
    httpx.get(secured.url + "/status", headers={"Authorization": f"Bearer {TOKEN}"}, trust_env=False)
    httpx.get(secured.url + "/status", headers={"Authorization": "Bearer otro-token-visible"}, trust_env=False)
    # the lines are written after the responses are sent: wait for them rather than race them
    log = wait_for(
        lambda: (text := secured.log()) and "GET /status 401" in text and "GET /status 200" in text and text,
        10,
        "both requests' log lines",
    )
    assert TOKEN not in log and "otro-token-visible" not in log


def test_token_file(fresh_worker, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(f"  {TOKEN}-file\n", encoding="utf-8")
    w = fresh_worker("--token-file", str(token_file))
    assert httpx.get(w.url + "/status", trust_env=False).status_code == 401
    ok = httpx.get(w.url + "/status", headers={"Authorization": f"Bearer {TOKEN}-file"}, trust_env=False)
    assert ok.status_code == 200
    assert f"{TOKEN}-file" not in w.log()
