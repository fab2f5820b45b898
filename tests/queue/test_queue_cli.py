"""The queue commands as a user runs them: real ``partisim`` subprocesses against real serve."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from helpers.processes import HOST_A, HOST_B, SERVE_HOST, free_port_on, wait_for
from helpers.terminal import PtySession
from queue_support import Cluster, run_cli, run_here, wait_batch

from partisim.serve.client import ServerClient
from partisim.serve.results.report import ratio_text
from partisim.sim.numbers import duration

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def served(pair, tmp_path_factory):
    """serve on the shared pair of workers, with one sweep already done."""
    tmp = tmp_path_factory.mktemp("served")
    c = Cluster(tmp)
    try:
        config = c.config([("worker-a", pair[0].url), ("worker-b", pair[1].url)])
        serve = c.serve(config, tmp / "q.db", wait_workers=2)
        done = run_cli(
            "sweep",
            "--engines",
            "python,cython",
            "--particles",
            "10,40",
            "--steps",
            "5",
            "--seeds",
            "1-3",
            "--server",
            serve.url,
            "--wait",
            cwd=tmp,
        )
        assert done.returncode == 0, done.stderr + done.stdout
        with ServerClient(serve.url) as client:
            (batch,) = [b.batch for b in client.batches()]
        yield serve, batch, tmp
    finally:
        c.stop_all()


def test_sweep_queued_the_cartesian_product_and_waited(served):
    serve, batch, _ = served
    with ServerClient(serve.url) as client:
        tasks = client.tasks(batch=batch)
    assert len(tasks) == 2 * 2 * 3 and {t.status for t in tasks} == {"success"}
    combos = {(t.benchmark, t.params["NUM_PARTICULAS"], t.params["SEMILLA"]) for t in tasks}
    assert len(combos) == 12 and {t.params["NUM_PASOS"] for t in tasks} == {5}


def test_results_as_table_csv_and_json(served, tmp_path: Path):
    serve, batch, _ = served
    table = run_cli("results", "--batch", batch, "--server", serve.url)
    assert table.returncode == 0, table.stderr
    assert "Resultados (12 tareas)" in table.stdout and "éxito" in table.stdout
    # the speed-ups after the table, busy runs included: the option the note points to exists here too
    busy = run_cli("results", "--batch", batch, "--server", serve.url, "--contended")
    assert busy.returncode == 0, busy.stderr
    assert "Aceleración cython / python" in busy.stdout and "use --contended" not in busy.stdout
    out = tmp_path / "r.csv"
    as_csv = run_cli("results", "--batch", batch, "--format", "csv", "-o", str(out), "--server", serve.url)
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert len(rows) == 12 and all(len(r["checksum"]) == 64 for r in rows)
    assert all(r["warnings"] == "" for r in rows)  # the default step: nothing to warn about
    assert {r["engine"] for r in rows} == {"python", "cython"}
    as_json = run_cli("results", "--batch", batch, "--format", "json", "--server", serve.url)
    data = json.loads(as_json.stdout)
    assert len(data) == 12 and data[0]["result"]["particle_collisions"] >= 0
    # same seed and size give the same checksum on any engine and worker
    by_case: dict[tuple, set] = {}
    for t in data:
        by_case.setdefault((t["params"]["NUM_PARTICULAS"], t["params"]["SEMILLA"]), set()).add(t["result"]["checksum"])
    assert all(len(sums) == 1 for sums in by_case.values())


def test_unwritable_output_is_a_clear_error(served, tmp_path: Path):
    serve, batch, _ = served
    for command, name in (("results", "r.csv"), ("report", "informe.png")):
        target = tmp_path / "no-existe" / name
        args = [command, "--batch", batch, "-o", str(target), "--server", serve.url]
        if command == "results":
            args += ["--format", "csv"]
        done = run_cli(*args)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "no se pudo escribir" in done.stderr and str(target) in done.stderr.replace("\n", "")
        assert "Traceback" not in done.stderr + done.stdout
        assert not target.parent.exists()


def test_report_png_is_a_valid_image(served, tmp_path: Path):
    serve, batch, _ = served
    png = tmp_path / "informe.png"
    # --contended: the speed-ups keep the runs measured on a busy machine (a worker running two
    # tasks at once is busy), so every pair is drawn whatever the load of the machine
    done = run_cli("report", "--batch", batch, "-o", str(png), "--server", serve.url, "--contended")
    assert done.returncode == 0, done.stderr + done.stdout
    assert "Aceleración cython / python" in done.stdout and "IC 95 %" in done.stdout
    # default restitutions (0.9, 0.8): the report says why it has no Física line
    assert (
        "Física: no se muestra: el lote no es elástico (COEF_RESTITUCION_PARTICULA = 0,9, COEF_RESTITUCION_PARED = 0,8)"
    ) in " ".join(done.stdout.split())
    assert "AVISO" not in done.stdout + done.stderr
    with ServerClient(serve.url) as client:
        chart = client.charts(batch, contended=True)
    assert chart.speedup
    for bar in chart.speedup:  # the printed table holds the values the PNG draws
        assert any(str(bar.particles) in line and ratio_text(bar.value) in line for line in done.stdout.splitlines())
    data = png.read_bytes()
    assert data.startswith(PNG_MAGIC)
    import matplotlib.image as mpimg

    pixels = mpimg.imread(png)
    assert pixels.shape[0] >= 400 and pixels.shape[1] >= 1000
    assert pixels.std() > 0.05  # something was drawn


def test_a_coarse_step_is_warned_once_per_text_and_kept_in_the_results(served, tmp_path: Path):
    serve, _, tmp = served
    done = run_cli(
        "sweep",
        "--engines",
        "cython",
        "--particles",
        "100,200",
        "--steps",
        "20",
        "--seeds",
        "1-3",
        "--dt",
        "0.8",
        "--batch",
        "grueso",
        "--server",
        serve.url,
        "--wait",
        cwd=tmp,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    err = " ".join(done.stderr.split())
    assert err.count("AVISO: paso de tiempo grueso: con DT = 0,8") == 2  # one per size, not per task
    with ServerClient(serve.url) as client:
        tasks = client.tasks(batch="grueso")
    assert len(tasks) == 6 and all(t.params["DT"] == 0.8 for t in tasks)
    texts = {t.params["NUM_PARTICULAS"]: t.result.warnings for t in tasks}
    assert all(len(w) == 1 and f"AVISO: {w[0]}" in err for w in texts.values())
    out = tmp_path / "grueso.csv"
    as_csv = run_cli("results", "--batch", "grueso", "--format", "csv", "-o", str(out), "--server", serve.url)
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert {r["warnings"] for r in rows if r["particles"] == "100"} == {texts[100][0]}
    table = run_cli("results", "--batch", "grueso", "--server", serve.url, env={"COLUMNS": "100"})
    lines = " ".join(table.stdout.split())
    assert f"Aviso 1: {texts[100][0]}" in lines and f"Aviso 2: {texts[200][0]}" in lines
    report = run_cli("report", "--batch", "grueso", "-o", str(tmp_path / "g.png"), "--server", serve.url)
    assert report.returncode == 0, report.stderr
    assert " ".join(report.stdout.split()).count("AVISO: paso de tiempo grueso") == 2


def test_fisica_line_of_an_elastic_dilute_batch_matches_kinetic_theory(served, tmp_path: Path):
    serve, _, tmp = served
    # 400 disks in 800 x 600 (eta = 0.065), elastic, 2000 steps of 0.1: about 75 collisions per particle
    done = run_cli(
        "sweep",
        "--engines",
        "cython",
        "--particles",
        "400",
        "--steps",
        "2000",
        "--seeds",
        "1-3",
        "--particle-restitution",
        "1",
        "--wall-restitution",
        "1",
        "--batch",
        "elastico",
        "--server",
        serve.url,
        "--wait",
        cwd=tmp,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert "AVISO" not in done.stderr
    report = run_cli("report", "--batch", "elastico", "-o", str(tmp_path / "e.png"), "--server", serve.url)
    assert report.returncode == 0, report.stderr
    text = " ".join(report.stdout.split())  # the no-break space of "45 222" becomes a plain one here
    found = re.search(
        r"Física: colisiones medidas / teoría cinética = (\d,\d{3}) \(con este dt se espera "
        r"≈ (\d,\d{3}); 3 tareas, ([\d ]+) colisiones\)",
        text,
    )
    assert found, text
    ratio, expected = (float(found.group(k).replace(",", ".")) for k in (1, 2))
    assert 0.96 < expected < 0.99  # dt = 0.1 misses about 3 % at this density
    assert abs(ratio / expected - 1) < 0.03, (ratio, expected)
    # the line sums what the workers measured (in SQL), task by task
    with ServerClient(serve.url) as client:
        tasks = client.tasks(batch="elastico")
        physics = client.charts("elastico").physics
    assert physics is not None and physics.shown and physics.tasks == 3
    assert (
        physics.collisions == sum(t.result.particle_collisions for t in tasks) == int(found.group(3).replace(" ", ""))
    )
    assert f"{physics.collisions:,}".replace(",", "\xa0") in report.stdout  # never broken across lines


def test_verify_reruns_on_the_other_worker_and_checksums_match(served):
    serve, batch, _ = served
    done = run_cli("results", "--batch", batch, "--verify", "4", "--server", serve.url)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "Los 4 checksums coinciden" in done.stdout
    with ServerClient(serve.url) as client:
        verify_batch = next(b.batch for b in client.batches() if b.batch.startswith("verify-"))
        reruns = client.tasks(batch=verify_batch)
        assert len(reruns) == 4
        for rerun in reruns:
            original = client.task(rerun.verify_of)
            assert rerun.worker != original.worker
            assert rerun.result.checksum == original.result.checksum


def test_verify_flags_a_checksum_mismatch(cluster: Cluster, pair, tmp_path: Path):
    liar = cluster.proxy(pair[1], mode="corrupt")
    config = cluster.config([("worker-a", pair[0].url), ("worker-liar", liar.url)])
    serve = cluster.serve(config, tmp_path / "q.db", wait_workers=2)
    with ServerClient(serve.url) as client:
        answer = client.submit([{"benchmark": "cython", "params": {"NUM_PARTICULAS": 10, "NUM_PASOS": 2}, "repeat": 4}])
        wait_batch(client, answer.batch, timeout=30)
    done = run_cli("results", "--batch", answer.batch, "--verify", "2", "--server", serve.url)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "NO COINCIDE" in done.stdout


def test_submit_file_then_wait_and_bad_file(served, tmp_path: Path):
    serve, _, _ = served
    good = tmp_path / "tareas.json"
    good.write_text(
        json.dumps([{"benchmark": "numpy", "params": {"NUM_PARTICULAS": 20, "NUM_PASOS": 3}, "repeat": 2}]),
        encoding="utf-8",
    )
    done = run_cli("submit", str(good), "--batch", "mi-lote", "--server", serve.url)
    assert done.returncode == 0, done.stderr
    assert "2 tareas en cola" in done.stdout and "mi-lote" in done.stdout
    waited = run_cli("wait", "--batch", "mi-lote", "--server", serve.url)
    assert waited.returncode == 0, waited.stderr + waited.stdout
    assert "2 tareas con éxito" in waited.stdout
    bad = tmp_path / "malas.json"
    bad.write_text(json.dumps([{"benchmark": "python", "params": {"NUM_PARTICULAS": "cien"}}]), encoding="utf-8")
    refused = run_cli("submit", str(bad), "--server", serve.url)
    assert refused.returncode == 2
    assert "malas.json" in refused.stderr and "NUM_PARTICULAS" in refused.stderr
    assert "Traceback" not in refused.stderr
    unknown = run_cli("wait", "--batch", "no-existe", "--server", serve.url)
    assert unknown.returncode == 2 and "no existe el lote no-existe" in unknown.stderr


def test_api_errors_are_spanish_json_not_5xx(served):
    import httpx

    serve, _, _ = served
    http = httpx.Client(base_url=serve.url, trust_env=False)
    cases = [
        ("POST", "/api/tasks", {"content": b"{no es json"}, 422, "JSON"),
        ("POST", "/api/tasks", {"json": {"benchmark": "rm -rf"}}, 422, "benchmark desconocido"),
        ("POST", "/api/tasks", {"json": {"tasks": [{"benchmark": "python", "params": {"DT": 0}}]}}, 422, "DT"),
        ("GET", "/api/tasks?status=raro", {}, 422, "status"),
        ("GET", "/api/tasks?limit=abc", {}, 422, "limit"),
        ("GET", "/api/tasks/t-nada", {}, 404, "tarea desconocida"),
        ("GET", "/api/tasks/t-nada?wait=1e9", {}, 422, "wait"),
        ("POST", "/api/verify", {"json": {"count": 0}}, 422, "count"),
    ]
    for method, path, kw, code, needle in cases:
        answer = http.request(method, path, **kw)
        assert answer.status_code == code, (path, answer.text)
        assert needle in answer.json()["error"], (path, answer.text)
    http.close()


def test_clients_say_clearly_when_serve_is_not_running(tmp_path: Path):
    url = f"http://{SERVE_HOST}:{free_port_on(SERVE_HOST)}"
    for argv in (("submit", "x.json"), ("report",)):
        if argv[0] == "submit":
            (tmp_path / "x.json").write_text('[{"benchmark": "python"}]', encoding="utf-8")
        done = run_here(*argv, "--server", url, cwd=tmp_path)  # a client's refusal: in this process
        assert done.returncode == 2, (argv, done.stdout, done.stderr)
        assert f"el servidor no está en marcha en {url}" in done.stderr
        assert "partisim serve" in done.stderr and "Traceback" not in done.stderr
    via_env = run_here("wait", cwd=tmp_path, env={"PARTISIM_SERVER": url})
    assert via_env.returncode == 2 and url in via_env.stderr


def test_serve_usage_errors_are_clear(cluster: Cluster, tmp_path: Path):
    # refused while the configuration is read, before anything listens: in this process
    done = run_here("serve", "--port", str(free_port_on(SERVE_HOST)), cwd=tmp_path)
    assert done.returncode == 2
    assert "config_workers.json" in done.stderr and "Traceback" not in done.stderr
    bad = tmp_path / "c.json"
    bad.write_text('{"workers": [{"id": "w", "ip": "nope", "port": 1}]}', encoding="utf-8")
    done = run_here("serve", "--config", str(bad), cwd=tmp_path)
    assert done.returncode == 2 and "ip" in done.stderr
    nobody = cluster.config([("w", f"http://{SERVE_HOST}:{free_port_on(SERVE_HOST)}")])
    first = cluster.serve(nobody, tmp_path / "q.db")
    second = run_cli(
        "serve",
        "--config",
        str(nobody),
        "--db",
        str(tmp_path / "q.db"),
        "--port",
        str(free_port_on(SERVE_HOST)),
        cwd=tmp_path,
    )
    assert second.returncode == 2 and "otra instancia de partisim serve" in second.stderr
    busy_port = first.url.rsplit(":", 1)[1]
    third = run_cli(
        "serve", "--config", str(nobody), "--db", str(tmp_path / "otra.db"), "--port", busy_port, cwd=tmp_path
    )
    assert third.returncode == 2 and f"no se puede escuchar en {SERVE_HOST}:{busy_port}" in third.stderr


def test_menu_queue_options_sweep_and_status(served, tmp_path: Path):
    serve, _, tmp = served
    config = next(tmp.glob("config-*.json"))
    answers = "8\ncython\n15\n2\n1-2\n\n9\n0\n"  # sweep with our values, wait, status, exit
    done = run_cli(
        "orchestrator", "--config", str(config), cwd=tmp_path, env={"PARTISIM_SERVER": serve.url}, input=answers
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Motores [python,cython]" in done.stdout
    assert "2 tareas en cola" in done.stdout and "Éxito 2 · fallidas 0" in done.stdout
    assert "Últimos lotes" in done.stdout and "Traceback" not in done.stdout + done.stderr


def test_serve_says_no_active_workers_and_notices_one_that_comes_back(cluster: Cluster, tmp_path: Path):
    port = free_port_on(HOST_A)
    config = cluster.config([("worker-a", f"http://{HOST_A}:{port}")])
    serve = cluster.serve(config, tmp_path / "q.db")
    wait_for(lambda: "NO HAY MÁQUINAS ACTIVAS" in serve.log(), 15, "serve warns that no worker answers")
    cluster.worker(HOST_A, "worker-a", port=port)
    wait_for(lambda: "worker-a activo" in " ".join(serve.log().split()), 15, "serve reports the worker active")


def test_unknown_batch_is_one_error_with_one_code(served):
    serve, _, tmp = served
    answers = [
        run_cli(command, "--batch", "no-existe", "--server", serve.url, cwd=tmp)
        for command in ("wait", "results", "report")
    ]
    assert [a.returncode for a in answers] == [2, 2, 2]
    messages = {a.stderr.strip() for a in answers}
    assert len(messages) == 1, messages
    message = messages.pop()
    with ServerClient(serve.url) as client:
        newest = client.batches(limit=1)[0].batch
    assert message.startswith("Error: no existe el lote no-existe; lotes recientes: ") and newest in message
    assert all(a.stdout == "" for a in answers)  # no progress bar, no table before the error


@pytest.mark.parametrize("columns", ["80", None], ids=["COLUMNS=80", "piped"])
def test_results_table_fits_80_columns_and_never_cuts_a_number(served, columns):
    serve, batch, tmp = served
    done = run_cli("results", "--batch", batch, "--server", serve.url, cwd=tmp, env={"COLUMNS": columns})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, "\n".join(lines)
    with ServerClient(serve.url) as client:
        tasks = client.tasks(batch=batch)
    for task in tasks:
        row = next(line for line in lines if task.id in line)  # the whole id
        cells = [cell.strip() for cell in row.strip("│ ").split("│")]
        for value in (
            task.params["NUM_PARTICULAS"],
            task.params["NUM_PASOS"],
            task.params["SEMILLA"],
            duration(task.result.simulation_time),
        ):
            assert str(value) in cells, (value, row)
    assert "…" not in done.stdout
    assert "Columnas ocultas por el ancho del terminal:" in " ".join(done.stdout.split())


def test_wait_progress_keeps_its_bar_and_count_at_80_columns(served):
    serve, batch, tmp = served
    session = PtySession(["wait", "--batch", batch, "--server", serve.url], columns=80, cwd=tmp)
    try:
        assert session.wait(60) == 0
        out = session.buffer
    finally:
        session.close()
    lines = [line for line in out.replace("\r", "\n").splitlines() if "━" in line]
    assert lines, out
    assert all("12/12" in line and len(line.rstrip()) <= 80 for line in lines[-1:]), lines[-1:]


def test_sweep_without_active_workers_says_the_tasks_will_wait(cluster: Cluster, tmp_path: Path):
    config = cluster.config([("worker-a", f"http://{HOST_A}:{free_port_on(HOST_A)}")])
    serve = cluster.serve(config, tmp_path / "q.db")
    done = run_cli(
        "sweep",
        "--engines",
        "cython",
        "--particles",
        "10",
        "--steps",
        "3",
        "--seeds",
        "1,2",
        "--threads",
        "2",
        "--server",
        serve.url,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "2 tareas en cola" in done.stdout
    with ServerClient(serve.url) as client:
        assert [t.threads for t in client.tasks()] == [2, 2]
    assert "NO HAY MÁQUINAS ACTIVAS: las tareas se quedarán en cola hasta que un worker responda." in " ".join(
        done.stderr.split()
    )
    empty = run_cli("sweep", "--engines", "cython", "--particles", "1,,2", "--server", serve.url, cwd=tmp_path)
    assert empty.returncode == 2 and "--particles: hay un valor vacío entre comas en '1,,2'" in empty.stderr


def test_menu_sweep_checks_each_answer_and_keeps_them(served, tmp_path: Path):
    serve, _, tmp = served
    config = next(tmp.glob("config-*.json"))
    answers = [
        "8",
        "fortran",
        "cython",  # engine: refused at once, asked again
        "100,x",
        "0",
        "12,24",  # particles: a bad list, a value out of range, then good
        "-3",
        "4",  # steps
        "1,,2",
        "1",  # seeds
        "n",  # do not wait
        "8",
        "",
        "",
        "",
        "",
        "n",  # the same sweep again: Enter keeps every previous answer
        "0",
    ]
    done = run_cli(
        "orchestrator",
        "--config",
        str(config),
        cwd=tmp_path,
        env={"PARTISIM_SERVER": serve.url},
        input="\n".join(answers) + "\n",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = " ".join(done.stdout.split())
    assert "Motores: benchmark desconocido: fortran" in out
    assert "Partículas: valor inválido 'x'" in out
    assert "Partículas: debe ser >= 1 (recibido 0)" in out
    assert "Pasos: debe ser >= 1 (recibido -3)" in out
    assert "Semillas (p. ej. 1-10): hay un valor vacío entre comas en '1,,2'" in out
    assert "--" not in out.split("Menú principal", 1)[1].split("Saliendo")[0]  # no CLI flag named
    assert out.count("2 tareas en cola") == 2
    assert "Motores [cython]" in out and "Partículas [12,24]" in out and "Pasos [4]" in out
    assert "Elija una opción" in out and "Elige" not in out and "Escribe" not in out
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.slow
def test_ctrl_c_while_waiting_for_a_batch_returns_to_the_menu(served, tmp_path: Path):
    serve, _, tmp = served
    config = next(tmp.glob("config-*.json"))
    session = PtySession(
        ["orchestrator", "--config", str(config)],
        cwd=tmp_path,
        env={**PtySession.default_env(), "PARTISIM_SERVER": serve.url},
    )
    batch = None
    try:
        session.expect("Elija una opción")
        for answer in ("8", "python", "300", "20000", "1-2"):  # minutes of work for pure Python
            session.send(answer + "\r")
        out = session.expect("¿Esperar a que termine el lote?")
        batch = out.rsplit("lote ", 1)[1].split()[0]
        session.send("\r")
        session.expect("0/2")
        session.send("\x03")  # Ctrl-C while the bar waits
        session.expect("Espera interrumpida")
        session.expect("Elija una opción")  # back in the menu, not out of it
        session.send("0\r")
        assert session.wait() == 0
    finally:
        session.close()
        if batch:
            with ServerClient(serve.url) as client:
                for task in client.tasks(batch=batch):
                    if task.status in ("queued", "running"):
                        client.cancel(task.id)


def test_serve_log_says_no_active_workers_once_when_all_go_down(cluster: Cluster, tmp_path: Path):
    a = cluster.worker(HOST_A, "worker-a")
    b = cluster.worker(HOST_B, "worker-b")
    serve = cluster.serve(cluster.config([("worker-a", a.url), ("worker-b", b.url)]), tmp_path / "q.db", wait_workers=2)
    a.kill()
    b.kill()
    wait_for(lambda: " ".join(serve.log().split()).count("inactivo tras") == 2, 20, "both workers inactive")
    wait_for(lambda: "NO HAY MÁQUINAS ACTIVAS" in serve.log(), 10, "the warning")
    assert serve.log().count("NO HAY MÁQUINAS ACTIVAS") == 1, serve.log()
