"""Numbers you can trust (issue 20) on the queue's side: the environment of a result is
stored once per worker and comes back whole in pages and exports; runs measured on a busy
machine are left out of the charts and counted; repeats have a median, a minimum and an
"inestable" mark; speed-ups have a 95% interval and pair only comparable runs."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import time

import pytest
from helpers.results import execute_result

from partisim.protocol import ExecuteResult
from partisim.serve.queue.rows import Selection
from partisim.serve.queue.store import TaskQueue
from partisim.serve.queue.task import TaskSpec
from partisim.serve.results.charts import chart_parts
from partisim.serve.results.rows import COLUMNS, to_csv
from partisim.serve.results.statistics import Group, group_times, pool, ratio_interval, speedups
from partisim.serve.web.export import export_chunks
from partisim.sim.environment import EngineBuild, Environment, MachineEnvironment, RunSample, judge


@pytest.fixture
def queue(tmp_path):
    q = TaskQueue(tmp_path / "q.sqlite")
    yield q
    q.close()


def machine(cpu: str = "CPU de prueba", cores: int = 2) -> MachineEnvironment:
    build = EngineBuild(compiler="gcc 12.2.0", flags="-O2 -fopenmp", openmp=True, wait_policy="spin-30000")
    return MachineEnvironment(
        cpu_model=cpu,
        logical_cpus=cores,
        affinity=f"0-{cores - 1}",
        usable_cpus=cores,
        memory_bytes=8 * 2**30,
        python="3.11.0",
        partisim="0.1.0",
        model=1,
        engine_build=build,
    ).identified()


def environment(m: MachineEnvironment, *, busy: bool = False, threads: int = 1) -> Environment:
    sample = RunSample(threads)
    sample.load_start = sample.load_end = 5.0 if busy else 0.1
    sample.runnable = [0, 1]
    return judge(sample, machine=m, threads_requested=threads, threads_used=threads, threads_reason="requested")


def run(
    queue: TaskQueue,
    engine: str,
    seconds: list[float],
    *,
    worker: str = "w1",
    env: MachineEnvironment | None = None,
    busy: bool = False,
    threads: int = 1,
    particles: int = 1000,
) -> list[str]:
    specs = [
        TaskSpec(engine, {"NUM_PARTICULAS": particles, "NUM_PASOS": 5, "SEMILLA": s}, threads=threads)
        for s in range(len(seconds))
    ]
    _, ids = queue.enqueue(specs, batch="b")
    for task_id, t in zip(ids, seconds, strict=True):
        queue.claim_many([(task_id, worker, "http://127.0.0.1:1", time.time() + 60)])
        result = execute_result(task_id=task_id, engine=engine, particles=particles, simulation_time=t)
        update: dict[str, object] = {"threads": threads, "threads_requested": threads}
        if env is not None:
            update["environment"] = environment(env, busy=busy, threads=threads)
        assert queue.complete(task_id, 1, result.model_copy(update=update))
    return ids


def test_the_static_environment_is_stored_once_and_comes_back_whole(queue, tmp_path):
    m = machine()
    ids = run(queue, "cython", [1.0, 1.1, 1.2], env=m)
    db = sqlite3.connect(tmp_path / "q.sqlite")
    try:
        assert db.execute("SELECT COUNT(*) FROM machines").fetchone()[0] == 1
        stored = json.loads(db.execute("SELECT result FROM tasks WHERE id = ?", (ids[0],)).fetchone()[0])
    finally:
        db.close()
    assert stored["environment"]["machine"] is None and stored["environment"]["machine_id"] == m.machine_id
    # a page (the dashboard's task JSON) and the NDJSON export put it back
    lines, _ = queue.reads.page(Selection(batch="b"), limit=10)
    for line in lines:
        env = json.loads(line)["result"]["environment"]
        assert env["machine"]["cpu_model"] == "CPU de prueba" and env["contended"] is False
    exported = "".join(export_chunks(queue, "ndjson", Selection(), upto=10**9, page_size=2))
    assert all(json.loads(x)["result"]["environment"]["machine"]["usable_cpus"] == 2 for x in exported.splitlines())


def test_csv_exports_say_how_a_run_was_measured_in_sql_and_in_python(queue):
    m = machine()
    run(queue, "cython", [1.0], env=m, busy=True, threads=2, particles=50_000)
    run(queue, "python", [3.0], env=m)
    server = "".join(export_chunks(queue, "csv", Selection(), upto=10**9, page_size=10))
    local = to_csv(t.view() for t in queue.tasks(batch="b"))
    assert server == local
    rows = list(csv.DictReader(io.StringIO(server)))
    assert list(rows[0]) == list(COLUMNS)
    busy, idle = rows
    assert (busy["contended"], busy["contended_by"], busy["threads"], busy["threads_requested"]) == (
        "True",
        "load",
        "2",
        "2",
    )
    assert (idle["contended"], idle["contended_by"], idle["cpu_model"], idle["runner"]) == (
        "False",
        "",
        "CPU de prueba",
        "process",
    )
    # the rest of the environment: a CSV alone says how and where each number was measured
    assert {k: idle[k] for k in ("logical_cpus", "usable_cpus", "memory_bytes", "python", "partisim", "model")} == {
        "logical_cpus": "2",
        "usable_cpus": "2",
        "memory_bytes": str(8 * 2**30),
        "python": "3.11.0",
        "partisim": "0.1.0",
        "model": "1",
    }
    assert (idle["compiler"], idle["flags"], idle["openmp"], idle["wait_policy"]) == (
        "gcc 12.2.0",
        "-O2 -fopenmp",
        "True",
        "spin-30000",
    )
    assert (idle["other_tasks"], idle["worker_threads_max"], idle["docker_image_id"]) == ("0", "1", "")


def test_busy_runs_are_left_out_of_the_charts_and_counted(queue):
    m = machine()
    run(queue, "python", [2.0, 2.2], env=m)
    run(queue, "cython", [0.10, 0.11], env=m)
    run(queue, "cython", [5.0], env=m, busy=True)
    for contended in (False, True):
        sql = pool(queue.reads.time_stats(["b"]), contended=contended)
        py = group_times((t.view() for t in queue.tasks(batch="b")), contended=contended)
        assert [(g.engine, g.n, g.contended) for g in sql.groups] == [(g.engine, g.n, g.contended) for g in py]
        cython = next(g for g in sql.groups if g.engine == "cython")
        if contended:
            assert sql.left_out == 0 and cython.n == 3 and cython.contended == 1
        else:
            assert sql.left_out == 1 and cython.n == 2 and cython.contended == 0
    parts = chart_parts(pool(queue.reads.time_stats(["b"]), contended=True).groups)
    point = next(s for s in parts.series if s.engine == "cython").points[0]
    assert point.contended == 1 and point.unstable  # 0.10, 0.11 and 5.0: far more than 10% CV


def test_repeats_report_median_minimum_and_instability(queue):
    run(queue, "cython", [1.0, 1.02, 0.99, 1.01])
    run(queue, "numpy", [1.0, 2.0, 1.1], particles=2000)
    groups = {g.engine: g for g in pool(queue.reads.time_stats(["b"])).groups}
    steady, shaky = groups["cython"], groups["numpy"]
    assert steady.median == pytest.approx(1.005) and steady.minimum == 0.99 and not steady.unstable
    assert shaky.median == 1.1 and shaky.minimum == 1.0 and shaky.unstable and shaky.cv > 0.1


def test_speedups_pair_only_comparable_runs_and_say_which(queue):
    same = machine("CPU A")
    other = machine("CPU B")
    run(queue, "python", [2.0, 2.1, 1.9], worker="w1", env=same)
    run(queue, "cython", [0.10, 0.11, 0.09], worker="w1", env=same)
    run(queue, "cython", [0.06, 0.05, 0.07], worker="w1", env=same, threads=2, particles=1000)
    run(queue, "python", [2.0, 2.0], worker="w2", env=other, particles=3000)
    run(queue, "cython", [0.1, 0.1], worker="w3", env=machine("CPU C"), particles=3000)
    ups = speedups(pool(queue.reads.time_stats(["b"])).groups)
    # different CPU models at 3000 particles: no pair; one worker at 1000, with 1 and 2 threads
    assert [(u.particles, dict(u.params)["threads"], u.basis, u.where) for u in ups] == [
        (1000, 1, "worker", "w1"),
        (1000, 2, "worker", "w1"),
    ]
    for u in ups:
        assert u.low is not None and u.high is not None and u.low < u.value < u.high


def test_same_cpu_model_on_two_workers_pairs_by_cpu():
    a = Group("python", 100, 5, 3, 2.0, 0.1, (("cpu", "X"), ("runner", "process"), ("threads", 1)), workers=("w1",))
    b = Group("cython", 100, 5, 3, 0.1, 0.01, (("cpu", "X"), ("runner", "process"), ("threads", 1)), workers=("w2",))
    (up,) = speedups([a, b])
    assert (up.basis, up.where) == ("cpu", "X")
    unknown = [
        Group(g.engine, g.particles, g.steps, g.n, g.mean, g.stdev, (("cpu", ""),), workers=g.workers) for g in (a, b)
    ]
    assert speedups(unknown) == []  # two workers, CPU model unknown: not comparable


def test_the_confidence_interval_narrows_with_more_repeats():
    def group(engine: str, mean: float, stdev: float, n: int) -> Group:
        return Group(engine, 100, 5, n, mean, stdev)

    few = ratio_interval(group("python", 2.0, 0.2, 3), group("cython", 0.1, 0.01, 3))
    many = ratio_interval(group("python", 2.0, 0.2, 30), group("cython", 0.1, 0.01, 30))
    assert few is not None and many is not None
    assert few[0] < many[0] < 20.0 < many[1] < few[1]
    assert ratio_interval(group("python", 2.0, 0.2, 1), group("cython", 0.1, 0.01, 3)) is None


def test_an_old_result_without_environment_still_reads(queue):
    ids = run(queue, "cython", [1.0])
    task = queue.get(ids[0])
    assert isinstance(task.result, ExecuteResult) and task.result.environment is None
    row = next(csv.DictReader(io.StringIO(to_csv([task.view()]))))
    assert row["contended"] == "" and row["machine_id"] == ""


def test_report_tables_and_footnotes_say_interval_instability_and_busy_runs(queue, tmp_path):
    from rich.console import Console

    from partisim.orchestrator.report_tables import contended_note, speedup_table, time_table
    from partisim.protocol import ChartData
    from partisim.serve.results.report import footnotes, write_report

    m = machine()
    run(queue, "python", [2.0, 2.2, 1.8], env=m)
    run(queue, "cython", [0.10, 0.11], env=m)
    run(queue, "cython", [5.0], env=m, busy=True)
    stats = queue.reads.time_stats(["b"])
    clean = pool(stats)
    parts = chart_parts(pool(stats, contended=True).groups, clean.groups)
    chart = ChartData(
        success=6, series=parts.series, speedup=parts.speedup, contended_left_out=clean.left_out, varied=parts.varied
    )
    console = Console(width=160, record=True)
    console.print(time_table(chart))
    console.print(speedup_table(chart))
    text = " ".join(console.export_text().split())
    assert "inestable (CV" in text and "1 ocupada" in text  # the cython point: 0.10, 0.11 and 5.0
    assert "IC 95 %" in text and "mismo worker (w1)" in text and "19,0×" in text  # 2.0 / 0.105
    # times in the unit that fits, with the decimal comma (the number rule), never 0.1050
    assert "2,00 s" in text and "105 ms" in text and "0.10" not in text and "(s)" not in text
    note = contended_note(chart)
    assert note is not None and "la aceleración deja fuera 1" in note
    notes = " ".join(footnotes(chart))
    assert "La aceleración deja fuera 1 ejecuciones medidas con la máquina ocupada" in notes
    assert "Aceleraciones comparables por: mismo worker (w1)." in notes
    png = tmp_path / "r.png"
    write_report(chart, png)  # the error bars and marks draw without complaint
    assert png.read_bytes().startswith(b"\x89PNG")
