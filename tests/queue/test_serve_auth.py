"""``partisim serve`` with a token, over http and https.

In-process tests check the rules of the middleware on a tiny app; the end-to-end test
starts a real worker (with its own token), serve (with another), and for https a TLS
front for the worker and a certificate the test makes, then goes through the API, the
CLI and the dashboard's login as a client would."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest
from helpers.config import write_config
from helpers.processes import HOST_A
from helpers.tls import make_certificate
from helpers.workers import TINY
from queue_support import QUEUE_SETTINGS, Cluster, run_cli
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from partisim.serve.web.auth import SESSION_COOKIE, SESSION_S, ServeAuth, session_cookie, valid_session

TOKEN = "tok-serve-6f1d2c9a"
WORKER_TOKEN = "tok-worker-91ab77e0"


# -- the rules, in-process ------------------------------------------------------------


async def _ok(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"{request.method} {request.url.path}")


async def _health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "version": "9.9"})


def _app(token: str | None = TOKEN, *, secure: bool = False) -> ServeAuth:
    inner = Starlette(
        routes=[
            Route("/", _ok),
            Route("/api/summary", _ok),
            Route("/api/tasks", _ok, methods=["POST"]),
            Route("/api/health", _health),
            Route("/static/dashboard.js", _ok),
            Route("/docs", _ok),
        ]
    )
    return ServeAuth(inner, token, secure_cookie=secure)


def _call(app: ServeAuth, method: str, path: str, **kw) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serve.test") as client:
            return await client.request(method, path, **kw)

    return asyncio.run(go())


def test_without_a_token_set_everything_is_open() -> None:
    app = _app(None)
    assert _call(app, "GET", "/api/summary").text == "GET /api/summary"
    assert _call(app, "POST", "/api/tasks").status_code == 200


def test_anonymous_callers_get_liveness_a_login_page_and_401() -> None:
    app = _app()
    health = _call(app, "GET", "/api/health")
    assert health.status_code == 200 and health.json() == {"status": "ok"}  # no version
    page = _call(app, "GET", "/")
    assert page.status_code == 200 and 'name="token"' in page.text and 'action="/login"' in page.text
    for method, path in (("GET", "/api/summary"), ("POST", "/api/tasks")):
        refused = _call(app, method, path)
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert "token" in refused.json()["error"] and refused.json()["status"] == "unauthorized"
    for path in ("/static/dashboard.js", "/docs"):
        moved = _call(app, "GET", path)
        assert moved.status_code == 303 and moved.headers["location"] == "/"


def test_the_bearer_token_must_match_exactly() -> None:
    app = _app()
    ok = {"Authorization": f"Bearer {TOKEN}"}
    assert _call(app, "GET", "/api/summary", headers=ok).text == "GET /api/summary"
    assert _call(app, "POST", "/api/tasks", headers=ok).status_code == 200
    for wrong in (f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", "Bearer ", TOKEN):
        answer = _call(app, "GET", "/api/summary", headers={"Authorization": wrong})
        assert answer.status_code == 401, wrong
        assert TOKEN not in answer.text


def test_login_sets_a_session_cookie_that_opens_the_dashboard_and_the_api() -> None:
    app = _app(secure=True)
    wrong = _call(app, "POST", "/login", data={"token": "nope"})
    assert wrong.status_code == 401 and "Token incorrecto" in wrong.text and "set-cookie" not in wrong.headers
    login = _call(app, "POST", "/login", data={"token": TOKEN})
    assert login.status_code == 303 and login.headers["location"] == "/"
    cookie = login.headers["set-cookie"]
    for flag in ("HttpOnly", "SameSite=Strict", "Secure", "Path=/"):
        assert flag in cookie
    assert TOKEN not in cookie
    value = cookie.split(";")[0].split("=", 1)[1]
    jar = {"Cookie": f"{SESSION_COOKIE}={value}"}
    assert _call(app, "GET", "/", headers=jar).text == "GET /"  # the dashboard itself
    assert _call(app, "GET", "/api/summary", headers=jar).status_code == 200
    # a page of another site cannot use the browser's cookie to submit work
    evil = _call(app, "POST", "/api/tasks", headers={**jar, "Origin": "http://evil.example"})
    assert evil.status_code == 403
    same = _call(app, "POST", "/api/tasks", headers={**jar, "Origin": "http://serve.test"})
    assert same.status_code == 200
    out = _call(app, "GET", "/logout", headers=jar)
    assert out.status_code == 303 and "Max-Age=0" in out.headers["set-cookie"]


def test_sessions_expire_and_die_with_the_token() -> None:
    now = time.time()
    value = session_cookie(TOKEN, now=now)
    assert valid_session(TOKEN, value, now=now)
    assert not valid_session(TOKEN, value, now=now + SESSION_S + 1)
    assert not valid_session("other-token", value, now=now)
    expires, mac = value.split(".")
    assert not valid_session(TOKEN, f"{int(expires) + 1000}.{mac}", now=now)  # a forged expiry
    assert not valid_session(TOKEN, "garbage", now=now)


# -- end to end: real worker, real serve, http and https ----------------------------


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_serve_refuses_without_token_and_accepts_with_it(cluster: Cluster, tmp_path: Path, scheme: str) -> None:
    cert = make_certificate(tmp_path / "tls")
    worker = cluster.worker(HOST_A, "worker-a", capacity=2, env={"PARTISIM_TOKEN": WORKER_TOKEN})
    (tmp_path / "worker.token").write_text(WORKER_TOKEN + "\n", encoding="utf-8")
    entry = {"id": "worker-a", "token_file": "worker.token"}
    settings: dict = dict(QUEUE_SETTINGS)
    if scheme == "https":
        front = cluster.proxy(worker, mode="pass", tls=(cert.cert, cert.key))  # an https worker URL
        entry.update(ip="127.0.0.1", port=_port(front.url), tls=True)
        settings["ca_file"] = str(cert.cert)
    else:
        entry.update(ip=HOST_A, port=worker.port)
    config = write_config(tmp_path / "config_workers.json", [entry], **settings)
    tls = (cert.cert, cert.key) if scheme == "https" else None
    serve = cluster.serve(config, tmp_path / "q.db", token=TOKEN, tls=tls, wait_workers=1)
    assert serve.url.startswith(f"{scheme}://")

    with httpx.Client(base_url=serve.url, verify=serve.verify, trust_env=False, timeout=10) as anon:
        assert anon.get("/api/summary").status_code == 401
        assert anon.post("/api/tasks", json={"benchmark": "python", "params": TINY}).status_code == 401
        assert anon.get("/api/health").json() == {"status": "ok"}
        assert 'name="token"' in anon.get("/").text
        # the dashboard's login: a session cookie, then the live event stream
        login = anon.post("/login", data={"token": TOKEN}, follow_redirects=False)
        assert login.status_code == 303
        assert ("Secure" in login.headers["set-cookie"]) == (scheme == "https")
        assert "Panel de monitoreo" in anon.get("/").text
        with anon.stream("GET", "/api/events") as events:
            assert events.status_code == 200
            for line in events.iter_lines():
                if line.startswith("data:"):
                    assert "summary" in json.loads(line[5:])
                    break

    # the CLI sends the token from PARTISIM_TOKEN (or --token-file); the worker gets its own
    tasks = tmp_path / "tareas.json"
    tasks.write_text(json.dumps([{"benchmark": "cython", "params": TINY, "repeat": 2}]), encoding="utf-8")
    ca = ["--ca-file", str(cert.cert)] if scheme == "https" else []
    refused = run_cli("submit", str(tasks), "--server", serve.url, *ca, cwd=tmp_path)
    assert refused.returncode != 0 and "token" in refused.stderr and "Traceback" not in refused.stderr
    done = run_cli(
        "submit",
        str(tasks),
        "--server",
        serve.url,
        *ca,
        "--wait",
        "--timeout-wait",
        "60",
        cwd=tmp_path,
        env={"PARTISIM_TOKEN": TOKEN},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (tmp_path / "serve.token").write_text(TOKEN, encoding="utf-8")
    results = run_cli(
        "results",
        "--server",
        serve.url,
        *ca,
        "--token-file",
        str(tmp_path / "serve.token"),
        "--format",
        "json",
        cwd=tmp_path,
    )
    assert results.returncode == 0, results.stderr
    rows = json.loads(results.stdout)
    assert len(rows) == 2 and all(r["status"] == "success" and r["result"]["checksum"] for r in rows)
    assert all(r["worker"] == "worker-a" and r["verifiable"] and r["duplicates"] == 0 for r in rows)
    if scheme == "https":  # without the CA, the self-signed certificate is refused, clearly
        untrusted = run_cli("results", "--server", serve.url, cwd=tmp_path, env={"PARTISIM_TOKEN": TOKEN})
        assert untrusted.returncode != 0 and "TLS" in untrusted.stderr and "--ca-file" in untrusted.stderr
    assert TOKEN not in serve.log() and WORKER_TOKEN not in serve.log()
