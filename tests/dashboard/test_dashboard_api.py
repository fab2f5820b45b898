"""The dashboard's HTTP side against a real `partisim serve` and a real worker:
the page and its assets, the event stream, sweeps and chart data."""

from __future__ import annotations

import re
import signal
import statistics
from collections import defaultdict
from pathlib import Path

import httpx
import pytest
from dash_support import DASH_SETTINGS, EventStream, Fleet
from helpers.config import write_config
from helpers.processes import HOST_A, HOST_B, free_port_on, wait_for
from helpers.serve import Serve
from helpers.workers import start_worker
from hypothesis import given, settings
from hypothesis import strategies as st

from partisim.errors import ParamsError
from partisim.serve.web.dashboard import parse_sweep_form

TINY = {"NUM_PARTICULAS": 12, "NUM_PASOS": 3, "SEMILLA": 5}


def _client(fleet: Fleet) -> httpx.Client:
    return httpx.Client(base_url=fleet.serve.url, timeout=10.0, trust_env=False)


def _wait_batch_done(client: httpx.Client, batch: str, timeout: float = 60.0) -> dict:
    return wait_for(
        lambda: (s := client.get("/api/summary", params={"batch": batch}).json())["done"] and s,
        timeout,
        f"batch {batch} to finish",
    )


# -- page and assets -----------------------------------------------------------------


def test_page_and_assets_are_served_by_partisim_itself(small_fleet: Fleet) -> None:
    with _client(small_fleet) as client:
        page = client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        html = page.text
        assert '<html lang="es">' in html and "Nuevo barrido" in html and "Cola de tareas" in html
        # every resource the page loads is on this server (or inline): works offline
        refs = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert refs, "the page references its assets"
        for ref in refs:
            assert ref.startswith(("/", "data:")), f"external reference {ref!r}"
        for name, kind in (("dashboard.css", "text/css"), ("dashboard.js", "text/javascript")):
            asset = client.get(f"/static/{name}")
            assert asset.status_code == 200 and asset.headers["content-type"].startswith(kind)
            assert "https://" not in asset.text and "@import" not in asset.text
            assert not re.search(r"""fetch\(\s*["'`]https?:""", asset.text)
        missing = client.get("/static/server.py")
        assert missing.status_code == 404
        assert missing.json() == {"status": "error", "error": "archivo desconocido: server.py"}
        assert client.get("/static/..%2Fapi.py").status_code == 404


# -- the event stream ------------------------------------------------------------------


def test_event_stream_pushes_a_snapshot_and_then_each_change(small_fleet: Fleet) -> None:
    url = small_fleet.serve.url
    with EventStream(url + "/api/events") as stream, _client(small_fleet) as client:
        assert stream.response.headers["content-type"].startswith("text/event-stream")
        _, first = stream.until(lambda e, d: e == "snapshot", 10, "the first snapshot")
        assert set(first) >= {"summary", "workers", "recent", "activity", "server_time"}
        assert [w["id"] for w in first["workers"]] == ["worker-01"]
        worker = first["workers"][0]
        assert worker["state"] == "active" and worker["address"] == small_fleet.workers["worker-01"].url[7:]
        assert {"failed", "completed", "capacity", "inflight", "latency_ms", "since"} <= set(worker)
        assert len(first["activity"]) == 30
        before = first["summary"]["success"]

        answer = client.post("/api/tasks", json={"benchmark": "cython", "params": TINY})
        assert answer.status_code == 201, answer.text
        task_id = answer.json()["ids"][0]

        done = stream.until_state(lambda d: d["summary"]["success"] == before + 1, 30, "a state with the finished task")
        recent = {t["id"]: t for t in done["recent"]}
        assert recent[task_id]["status"] == "success"
        assert re.fullmatch(r"[0-9a-f]{64}", recent[task_id]["result"]["checksum"])
        assert done["workers"][0]["completed"] >= 1
        assert sum(a["per_s"] for a in done["activity"]) > 0


def test_idle_stream_sends_only_heartbeats_and_ends_on_shutdown(tmp_path: Path) -> None:
    # one live worker pinged every 0.3 s (its latency changes on every ping) and one that
    # nobody runs: once both states have settled, nothing changes, so only heartbeats flow
    worker = start_worker(HOST_A, None, env={"WORKER_ID": "worker-01"}, cwd=tmp_path / "worker")
    config = write_config(
        tmp_path / "config.json",
        [("worker-01", worker.host, worker.port), ("worker-02", HOST_B, free_port_on(HOST_B))],
        **{**DASH_SETTINGS, "ping_interval": 0.3},
    )
    serve = Serve(config, tmp_path / "q.db", workdir=tmp_path)
    try:
        serve.start()
        with EventStream(serve.url + "/api/events") as stream:
            settled = stream.until_state(
                lambda d: [w["state"] for w in d["workers"]] == ["active", "inactive"], 15, "settled workers"
            )
            assert settled["summary"]["workers_active"] == 1
            checked = httpx.get(serve.url + "/api/workers", timeout=5, trust_env=False).json()["workers"][0]
            event, beat = stream.until(lambda e, d: True, 15, "the next event")
            assert event == "heartbeat", f"a change was pushed while idle: {event} {beat}"
            assert beat["v"] == settled["v"] and beat["server_time"] > 0
            # the worker was really pinged meanwhile: its health changed, the page was not told
            again = httpx.get(serve.url + "/api/workers", timeout=5, trust_env=False).json()["workers"][0]
            assert again["checked_at"] > checked["checked_at"]
            # SIGTERM with the stream open: the stream ends and serve exits cleanly
            serve.terminate()
            rest = []
            while (item := stream.next()) is not None:
                rest.append(item[0])
            assert all(e in ("update", "heartbeat") for e in rest)
        # uvicorn re-raises the signal once it has shut down cleanly
        assert serve.proc.wait(timeout=30) in (0, -signal.SIGTERM), serve.log()
        log = serve.log()
        assert "graceful shutdown exceeded" not in log and "Traceback" not in log, log
    finally:
        serve.stop()
        worker.stop(timeout=10)


# -- sweeps ----------------------------------------------------------------------------


def test_sweep_expands_and_queues_one_batch(small_fleet: Fleet) -> None:
    with _client(small_fleet) as client:
        answer = client.post(
            "/api/sweeps",
            json={
                "engines": ["python", "benchmark_cython.py"],
                "particles": "10,20",
                "steps": [3],
                "seeds": "1-2",
                "repeat": 2,
            },
        )
        assert answer.status_code == 201, answer.text
        body = answer.json()
        assert body["count"] == 2 * 2 * 1 * 2 * 2 and len(body["ids"]) == 16
        tasks = client.get("/api/tasks", params={"batch": body["batch"]}).json()["tasks"]
        combos = sorted(
            (t["benchmark"], t["params"]["NUM_PARTICULAS"], t["params"]["NUM_PASOS"], t["params"]["SEMILLA"])
            for t in tasks
        )
        expected = sorted(
            (e, n, 3, s) for e in ("python", "cython") for n in (10, 20) for s in (1, 2) for _ in range(2)
        )
        assert combos == expected
        _wait_batch_done(client, body["batch"])


@pytest.mark.parametrize(
    ("body", "field", "needle"),
    [
        (
            {"engines": ["python"], "particles": "10000", "steps": "5", "seeds": "1"},
            "particles",
            "NUM_PARTICULAS/RADIO_PARTICULA: fracción de empaquetamiento",
        ),
        (
            {"engines": ["python"], "particles": "abc", "steps": "5", "seeds": "1"},
            "particles",
            "partículas: valor inválido 'abc'",
        ),
        (
            {"engines": ["python"], "particles": "0", "steps": "5", "seeds": "1"},
            "particles",
            "partículas: debe ser >= 1 (recibido 0)",
        ),
        (
            {"engines": ["python"], "particles": "", "steps": "5", "seeds": "1"},
            "particles",
            "partículas: indique al menos un valor",
        ),
        ({"engines": ["python"], "particles": "10", "steps": "0", "seeds": "1"}, "steps", "pasos: debe ser >= 1"),
        (
            {"engines": ["python"], "particles": "1,,2", "steps": "5", "seeds": "1"},
            "particles",
            "partículas: hay un valor vacío entre comas",
        ),
        ({"engines": ["python"], "particles": "10", "steps": "9-3", "seeds": "1"}, "steps", "rango vacío"),
        ({"engines": ["python"], "particles": "10", "steps": "5", "seeds": "-1"}, "seeds", "semillas: debe ser >= 0"),
        ({"engines": [], "particles": "10", "steps": "5", "seeds": "1"}, "engines", "motores: elija"),
        ({"engines": ["../benchmark.py"], "particles": "10", "steps": "5", "seeds": "1"}, "engines", "motores:"),
        ({"engines": ["python"], "particles": "10", "steps": "5", "seeds": "1", "repeat": 0}, "repeat", "repeticiones"),
        (
            {"engines": ["python"], "particles": "10", "steps": "5", "seeds": "1", "repeat": "-1"},
            "repeat",
            "repeticiones debe estar entre 1 y 10000 (recibido -1)",
        ),
        (
            {"engines": ["python"], "particles": "10", "steps": "5", "seeds": "1", "repeat": "dos"},
            "repeat",
            "repeticiones",
        ),
        (
            {"engines": ["cython"], "particles": "10", "steps": "5", "seeds": "1", "threads": "0"},
            "threads",
            "hilos debe estar entre 1 y 1024 (recibido 0)",
        ),
        (
            {"engines": ["cython"], "particles": "10", "steps": "5", "seeds": "1", "threads": "cuatro"},
            "threads",
            "hilos debe ser un número entero",
        ),
        ({"engines": ["python"], "particles": [True], "steps": "5", "seeds": "1"}, "particles", "partículas"),
        (
            {"engines": ["python"], "particles": "10", "steps": "5", "dt": "abc"},
            "dt",
            "dt: debe ser un número, como 0,1 (recibido 'abc')",
        ),
        ({"engines": ["python"], "particles": "10", "steps": "5", "dt": 0}, "dt", "dt: debe ser > 0"),
        (
            {"engines": ["python"], "particles": "10", "steps": "5", "dt": "50"},
            "dt",
            "VELOCIDAD_INICIAL_MAX*DT (max_speed*dt) no puede superar el lado menor del mundo",
        ),
        ({"engines": ["python"], "particles": "10", "colour": "red"}, None, "clave desconocida 'colour'"),
        (["python"], None, "objeto JSON"),
    ],
)
def test_bad_sweep_gets_a_spanish_422_naming_the_field(small_fleet: Fleet, body, field, needle) -> None:
    with _client(small_fleet) as client:
        before = client.get("/api/summary").json()["total"]
        answer = client.post("/api/sweeps", json=body)
        assert answer.status_code == 422, answer.text
        error = answer.json()
        assert error["status"] == "error" and needle in error["error"], error
        assert error.get("field") == field
        assert client.get("/api/summary").json()["total"] == before  # nothing queued


def test_sweep_and_task_api_share_the_validation(small_fleet: Fleet) -> None:
    with _client(small_fleet) as client:
        for params, form in (({"NUM_PARTICULAS": 10000}, {"particles": "10000"}), ({"NUM_PASOS": 0}, {"steps": "0"})):
            api = client.post("/api/tasks", json={"benchmark": "python", "params": params})
            assert api.status_code == 422
            # the same rule and reason; each names the field as its user wrote it
            api_reason = api.json()["error"].split(": ", 1)[1].removeprefix("NUM_PASOS: ")
            full = {"engines": "python", "particles": "10", "steps": "5", "seeds": "1", **form}
            sweep = client.post("/api/sweeps", json=full)
            assert sweep.status_code == 422
            assert sweep.json()["error"].removeprefix("pasos: ") == api_reason
        assert client.post("/api/sweeps", content=b"{not json").status_code == 422


def test_submissions_carry_the_coarse_step_warnings_and_so_do_the_results(small_fleet: Fleet) -> None:
    with _client(small_fleet) as client:
        # sizes and steps of their own: the chart tests of this module pool the shared queue by them
        plain = client.post("/api/sweeps", json={"engines": "cython", "particles": "100", "steps": "21", "seeds": "1"})
        assert plain.status_code == 201 and plain.json()["warnings"] == []
        # two sizes at dt = 0.8 (the form may write "0,8"): one text each, whatever the seeds
        coarse = client.post(
            "/api/sweeps",
            json={"engines": "cython", "particles": "100,200", "steps": "20", "seeds": "1-3", "dt": "0,8"},
        )
        assert coarse.status_code == 201, coarse.text
        body = coarse.json()
        assert body["count"] == 6 and body["warning"] is None
        assert len(body["warnings"]) == 2 and all("con DT = 0,8" in w for w in body["warnings"])
        task = client.post(
            "/api/tasks",
            json={"benchmark": "cython", "params": {**TINY, "NUM_PARTICULAS": 100, "NUM_PASOS": 19, "DT": 0.8}},
        )
        assert task.status_code == 201
        (text,) = task.json()["warnings"]
        assert text == body["warnings"][0]  # 100 particles at dt 0.8 both times
        assert client.post("/api/tasks", json={"benchmark": "cython", "params": TINY}).json()["warnings"] == []
        # the worker's answer carries it, so the stored task does, and the batch's charts
        _wait_batch_done(client, body["batch"])
        stored = client.get("/api/tasks", params={"batch": body["batch"]}).json()["tasks"]
        by_size = {t["params"]["NUM_PARTICULAS"]: t["result"]["warnings"] for t in stored}
        assert by_size == {100: body["warnings"][:1], 200: body["warnings"][1:]}
        charts = client.get("/api/charts", params={"batch": body["batch"]}).json()
        assert sorted(charts["warnings"]) == sorted(body["warnings"])
        # default restitutions: the Física line says why it is not shown
        assert charts["physics"]["shown"] is False and charts["physics"]["text"] == (
            "Física: no se muestra: el lote no es elástico (COEF_RESTITUCION_PARTICULA = 0,9, "
            "COEF_RESTITUCION_PARED = 0,8)"
        )


# -- charts ----------------------------------------------------------------------------


def test_chart_data_aggregates_the_stored_successes(small_fleet: Fleet) -> None:
    with _client(small_fleet) as client:
        answer = client.post(
            "/api/sweeps",
            json={
                "engines": "python,cython",
                "particles": "16,32",
                "steps": "4",
                "seeds": "1,2",
            },
        )
        assert answer.status_code == 201, answer.text
        _wait_batch_done(client, answer.json()["batch"])
        charts = client.get("/api/charts").json()
        # the speed-ups leave out runs measured on a busy machine (two slots of the worker at
        # once count as busy): asked to keep them, every pair shows
        with_busy = client.get("/api/charts", params={"contended": "1"}).json()
        tasks = client.get("/api/tasks", params={"status": "success", "limit": 100000}).json()["tasks"]

    busy = sum(bool((t["result"].get("environment") or {}).get("contended")) for t in tasks if not t["verify_of"])
    assert with_busy["contended_shown"] and not charts["contended_shown"]
    assert charts["contended_left_out"] == busy and with_busy["series"] == charts["series"]
    times: dict[tuple[str, int, int], list[float]] = defaultdict(list)
    for t in tasks:
        if not t["verify_of"]:
            key = (t["result"]["engine"], t["params"]["NUM_PARTICULAS"], t["params"]["NUM_PASOS"])
            times[key].append(t["result"]["simulation_time"])
    assert charts["success"] == len(tasks)
    drawn = {(line["engine"], p["particles"], line["steps"]): p for line in charts["series"] for p in line["points"]}
    assert set(drawn) == set(times)
    for key, values in times.items():
        assert drawn[key]["n"] == len(values)
        assert drawn[key]["mean"] == pytest.approx(statistics.fmean(values))
    speedups = {(s["particles"], s["steps"]): s for s in with_busy["speedup"]}
    for n in (16, 32):
        python = statistics.fmean(times[("python", n, 4)])
        cython = statistics.fmean(times[("cython", n, 4)])
        assert speedups[(n, 4)]["value"] == pytest.approx(python / cython)
    # several step counts in the store: each line says which
    assert all("pasos" in line["label"] for line in charts["series"]) == (len({k[2] for k in times}) > 1)


def test_the_sweep_form_sets_the_threads_of_every_task() -> None:
    specs = parse_sweep_form({"engines": ["python", "cython"], "particles": "10,20", "steps": "5", "threads": "2"})
    assert len(specs) == 4 and {s.threads for s in specs} == {2}
    assert {s.threads for s in parse_sweep_form({"engines": "cython", "particles": "10", "steps": "5"})} == {1}


# -- the sweep parser on any input -------------------------------------------------------

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=True)
    | st.text(max_size=12)
    | st.sampled_from(["python", "cython", "1-3", "10,20", "0", "-5", "9-1"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    body=st.dictionaries(st.sampled_from(["engines", "particles", "steps", "seeds", "repeat", "threads", "dt"]), _json)
    | _json
)
def test_sweep_parser_accepts_or_explains_any_json(body) -> None:
    try:
        specs = parse_sweep_form(body)
    except ParamsError as exc:
        assert exc.message and "Traceback" not in exc.message
        assert exc.field in (None, "engines", "particles", "steps", "seeds", "repeat", "threads", "dt")
    else:
        assert specs and all(s.benchmark in ("python", "numpy", "cython") for s in specs)


def test_chart_data_per_batch_pooled_in_sql_with_a_style_per_series(small_fleet: Fleet) -> None:
    with _client(small_fleet) as client:
        first = client.post(
            "/api/sweeps", json={"engines": "python,cython", "particles": "12,24", "steps": "3", "seeds": "1,2"}
        ).json()["batch"]
        second = client.post(
            "/api/sweeps", json={"engines": "python,cython", "particles": "12,24", "steps": "6", "seeds": "1"}
        ).json()["batch"]
        # a third batch that varies another parameter than steps
        third = client.post(
            "/api/tasks",
            json={
                "batch": "radios",
                "tasks": [
                    {"benchmark": "cython", "params": {"NUM_PARTICULAS": 12, "NUM_PASOS": 3, "RADIO_PARTICULA": r}}
                    for r in (4, 4.5)
                ],
            },
        ).json()["batch"]
        for batch in (first, second, third):
            _wait_batch_done(client, batch)
        charts = {
            key: client.get("/api/charts", params={"batch": key}).json() for key in ("latest", "todos", first, second)
        }
        everything = client.get("/api/charts").json()
        unknown = client.get("/api/charts", params={"batch": "no-existe"})
        tasks = client.get("/api/tasks", params={"status": "success", "limit": 100000}).json()["tasks"]

    assert unknown.status_code == 404 and unknown.json()["error"] == "no existe el lote no-existe"
    assert everything == charts["todos"] and everything["batch"] is None
    latest = charts["latest"]
    assert latest["batch"] == latest["latest"] == third
    assert [b["batch"] for b in latest["batches"]][:3] == [third, second, first]  # newest first
    assert latest["varied"] == ["RADIO_PARTICULA"]
    assert sorted(line["label"] for line in latest["series"]) == ["cython · radio 4", "cython · radio 4,5"]
    assert charts[first]["varied"] == [] and {line["label"] for line in charts[first]["series"]} == {"python", "cython"}

    # every batch: the mean and deviation of each group are those of its raw results
    times: dict[tuple, list[float]] = defaultdict(list)
    for t in tasks:
        p = t["params"]
        if not t["verify_of"]:
            times[(t["benchmark"], p["NUM_PARTICULAS"], p["NUM_PASOS"], p["RADIO_PARTICULA"])].append(
                t["result"]["simulation_time"]
            )
    drawn = {}
    for line in charts["todos"]["series"]:
        radius = line["params"].get("RADIO_PARTICULA", 5.0)
        for point in line["points"]:
            drawn[(line["engine"], point["particles"], line["steps"], radius)] = point
    assert set(drawn) == set(times)
    for key, values in times.items():
        assert drawn[key]["n"] == len(values)
        assert drawn[key]["mean"] == pytest.approx(statistics.fmean(values), rel=1e-9)
        expected = statistics.stdev(values) if len(values) > 1 else 0.0
        assert drawn[key]["stdev"] == pytest.approx(expected, rel=1e-6, abs=1e-12)
    styles = [(s["color"], s["marker"], s["dash"], s["filled"]) for s in charts["todos"]["series"]]
    assert len(set(styles)) == len(styles), styles
    assert {s["marker"] for s in charts["todos"]["series"] if s["engine"] == "python"} == {"circle"}
    assert {s["marker"] for s in charts["todos"]["series"] if s["engine"] == "cython"} == {"triangle"}


def test_submissions_warn_when_no_worker_is_active_and_the_page_says_what_to_check(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.json", [("worker-01", HOST_A, free_port_on(HOST_A))], **DASH_SETTINGS)
    serve = Serve(config, tmp_path / "q.db", workdir=tmp_path)
    try:
        serve.start()
        with httpx.Client(base_url=serve.url, timeout=10.0, trust_env=False) as client:
            sweep = client.post(
                "/api/sweeps", json={"engines": "cython", "particles": "10", "steps": "3", "seeds": "1,2"}
            )
            assert sweep.status_code == 201
            assert sweep.json()["warning"] == (
                "NO HAY MÁQUINAS ACTIVAS: las tareas se quedarán en cola hasta que un worker responda."
            )
            one = client.post("/api/tasks", json={"benchmark": "cython", "params": TINY})
            assert "la tarea se quedará en cola" in one.json()["warning"]
            page = client.get("/").text
        checklist = re.findall(r"<li>(.*?)</li>", page.split('id="no-workers"')[1].split("</ul>")[0])
        assert len(checklist) == 4 and "start_worker.sh" in checklist[0]
        assert str(config) in checklist[1]  # the configuration this serve reads
    finally:
        serve.stop()
