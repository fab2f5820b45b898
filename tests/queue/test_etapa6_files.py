"""The users' ETAPA-6 task files read unchanged (both wrappers, both parameter spellings,
priorities as numbers or words, task_id kept as the label), and the queue's priorities:
a new column that older databases get, and ``ready()`` in priority order, FIFO within a
level."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from partisim.errors import ParamsError
from partisim.orchestrator.batches import task_objects
from partisim.serve.queue.rows import Selection
from partisim.serve.queue.specs import load_task_document, parse_tasks, read_submission, read_tasks
from partisim.serve.queue.store import TaskQueue
from partisim.serve.queue.task import TaskSpec

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tareas_etapa6.json"

#: their generator's wrapper, as it writes it (with the fields it adds to each task)
GENERATED = {
    "generated_at": "2026-11-30T09:00:00",
    "task_count": 3,
    "source": "generador",
    "description": "tareas generadas",
    "tasks": [
        {
            "task_id": f"task_{k:03d}",
            "algorithm": algorithm,
            "parameters": {"num_particles": 50 + k, "num_steps": 20, "seed": k},
            "priority": priority,
            "description": f"tarea {k}",
            "created_at": "2026-11-30T09:00:00",
            "status": "pending",
            "source": "generador",
        }
        for k, (algorithm, priority) in enumerate([("python", 5), ("benchmark_cython.py", "high"), ("cython", 1)])
    ],
}


def test_both_wrappers_load_with_labels_priorities_and_engines() -> None:
    generated = read_tasks(GENERATED, "generado.json")
    assert generated.warnings == []
    assert [(s.label, s.benchmark, s.priority) for s in generated.specs] == [
        ("task_000", "python", 5),
        ("task_001", "cython", 10),
        ("task_002", "cython", 1),
    ]
    assert generated.specs[1].params["NUM_PARTICULAS"] == 51 and generated.specs[1].params["SEMILLA"] == 1
    example = load_task_document(EXAMPLE)
    assert example.warnings == [] and len(example.specs) == 6
    by_label = {s.label: s for s in example.specs}
    assert by_label["cython_urgente"].priority == 10 and by_label["calentamiento_python"].priority == 1
    assert by_label["python_medio"].priority == 5 and by_label["python_medio"].benchmark == "python"
    # both spellings of the parameters give the same task
    assert by_label["cython_urgente"].params == by_label["python_medio"].params


def test_without_a_wrapper_and_through_the_api_body() -> None:
    specs = parse_tasks(GENERATED["tasks"], "lista.json")
    assert [s.label for s in specs] == ["task_000", "task_001", "task_002"]
    document, batch = read_submission(GENERATED)
    assert batch is None and len(document.specs) == 3
    one, _ = read_submission(GENERATED["tasks"][0])
    assert one.specs[0].label == "task_000"


def test_a_count_that_disagrees_is_a_warning_not_an_error() -> None:
    generated = read_tasks({**GENERATED, "task_count": 5}, "generado.json")
    assert len(generated.specs) == 3
    assert generated.warnings == ["generado.json: task_count dice 5 pero el archivo trae 3 tareas; se encolan las 3"]
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["metadata"]["total_tasks"] = 2
    assert "total_tasks dice 2" in read_tasks(data, "manual.json").warnings[0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["tasks"][1].update(task_id="task_000"), r"identificador 'task_000' se repite \(tareas 1 y 2\)"),
        (lambda d: d["tasks"][0].update(owner="ana"), r"tarea 1: clave desconocida 'owner'"),
        (lambda d: d.update(generator="x"), r"clave desconocida 'generator'"),
        (lambda d: d["tasks"][0].update(priority="urgente"), r"priority debe ser un número entero o high"),
        (lambda d: d["tasks"][2].update(algorithm="fortran"), r"tarea 3: benchmark desconocido: fortran"),
        (lambda d: d["tasks"][0]["parameters"].update(NUM_PARTICULAS=5), r"aparece dos veces"),
    ],
)
def test_errors_name_what_is_wrong(change, message: str) -> None:
    data = json.loads(json.dumps(GENERATED))
    change(data)
    with pytest.raises(ParamsError, match=message):
        read_tasks(data, "generado.json")


def test_unknown_metadata_key_is_named() -> None:
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["metadata"]["autor"] = "yo"
    with pytest.raises(ParamsError, match="clave desconocida 'autor' en metadata"):
        read_tasks(data, "manual.json")


def test_harmless_extras_are_accepted() -> None:
    # an integer task id, a numeric text as priority; description and priority on our own format
    data = json.loads(json.dumps(GENERATED))
    data["tasks"][0].update(task_id=17, priority="7")
    specs = read_tasks(data, "x").specs
    assert specs[0].label == "17" and specs[0].priority == 7
    ours = parse_tasks([{"benchmark": "python", "description": "la mía", "priority": "low", "label": "a"}])
    assert ours[0].priority == 1 and ours[0].label == "a"


def test_numbers_sent_as_text_are_those_numbers_in_both_formats() -> None:
    """The worker has always taken "100" for 100 in params; the queue takes it the same."""
    data = json.loads(json.dumps(GENERATED))
    data["tasks"][0]["parameters"] = {"num_particles": "50", "num_steps": " 20 ", "seed": "7", "DT": "0.05"}
    theirs = read_tasks(data, "x").specs[0].params
    ours = parse_tasks([{"benchmark": "python", "params": {"NUM_PARTICULAS": "50", "NUM_PASOS": 20, "SEMILLA": 7}}])
    assert theirs["NUM_PARTICULAS"] == ours[0].params["NUM_PARTICULAS"] == 50
    assert theirs["NUM_PASOS"] == 20 and theirs["SEMILLA"] == 7 and theirs["DT"] == 0.05
    with pytest.raises(ParamsError, match="NUM_PARTICULAS"):  # text that is not a number is still refused
        parse_tasks([{"benchmark": "python", "params": {"NUM_PARTICULAS": "cien"}}])
    with pytest.raises(ParamsError, match="NUM_PARTICULAS"):  # and a fraction where a count is meant
        parse_tasks([{"benchmark": "python", "params": {"NUM_PARTICULAS": "50.5"}}])


def test_the_cli_sends_a_labelled_repeated_task_as_one_object() -> None:
    specs = parse_tasks([{"benchmark": "python", "repeat": 3, "label": "rep", "priority": 4}])
    assert len(specs) == 3
    objects = task_objects(specs)
    assert objects == [{"benchmark": "python", "params": specs[0].params, "priority": 4, "label": "rep", "repeat": 3}]
    assert parse_tasks(objects) == specs  # and the server reads it back as the same three


def test_ready_is_by_priority_then_submission(tmp_path: Path) -> None:
    with TaskQueue(tmp_path / "q.db") as queue:
        specs = [
            TaskSpec("python", {"NUM_PARTICULAS": 10}, priority=p, label=f"t{k}")
            for k, p in enumerate([1, 5, 5, 10, 0, 5])
        ]
        _, ids = queue.enqueue(specs, batch="b")
        order = [t.label for t in queue.ready(10)]
        assert order == ["t3", "t1", "t2", "t5", "t0", "t4"]
        assert [t.label for t in queue.ready(2, offset=2)] == ["t2", "t5"]
        # a retried task keeps its priority: it goes back ahead of lower ones
        assert queue.claim_many([(ids[3], "w", "u", time.time() + 60)])[0] == 1
        assert queue.retry(ids[3], 1, "caído", not_before=0.0)
        assert queue.ready(1)[0].label == "t3"
        # the label is searchable and shown
        lines, _ = queue.reads.page(Selection(label="t4"), limit=10)
        view = json.loads(lines[0])
        assert len(lines) == 1 and view["label"] == "t4" and view["priority"] == 0
        assert queue.get(ids[1]).view().label == "t1"


def test_an_older_database_gets_the_priority_column(tmp_path: Path) -> None:
    path = tmp_path / "vieja.db"
    with TaskQueue(path) as queue:
        queue.enqueue([TaskSpec("python", {"NUM_PARTICULAS": 10})], batch="old")
    with sqlite3.connect(path) as db:  # as a partisim without priorities left it
        db.execute("DROP INDEX tasks_status_priority")
        db.execute("DROP INDEX tasks_label")
        db.execute("ALTER TABLE tasks DROP COLUMN label")
        db.execute("ALTER TABLE tasks DROP COLUMN priority")
    with TaskQueue(path) as queue:
        queue.enqueue([TaskSpec("python", {"NUM_PARTICULAS": 10}, priority=3, label="nueva")], batch="new")
        assert [(t.batch, t.priority, t.label) for t in queue.ready(10)] == [("new", 3, "nueva"), ("old", 0, None)]


def test_the_readme_example_loads_without_warnings() -> None:
    readme = (EXAMPLE.parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Archivos de tareas")[1].split("## Migrar desde ETAPA 4–6")[0]
    block = section.split("```json")[1].split("```")[0]
    document = read_tasks(json.loads(block), "README")
    assert document.warnings == [] and [s.label for s in document.specs] == ["calentamiento_python", "cython_urgente"]


def test_the_dashboard_form_sets_a_priority() -> None:
    from partisim.serve.web.dashboard import parse_sweep_form

    form = {"engines": ["python"], "particles": "10,20", "steps": "5", "seeds": "1"}
    assert {s.priority for s in parse_sweep_form({**form, "priority": "high"})} == {10}
    assert {s.priority for s in parse_sweep_form({**form, "priority": 3})} == {3}
    assert {s.priority for s in parse_sweep_form(form)} == {0}
    with pytest.raises(ParamsError, match="prioridad: priority debe ser") as caught:
        parse_sweep_form({**form, "priority": "urgente"})
    assert caught.value.field == "priority"


def test_a_file_that_is_not_utf8_is_named_as_such(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.json"
    bad.write_bytes('[{"benchmark": "python", "label": "año"}]'.encode("latin-1"))
    with pytest.raises(ParamsError, match=r"latin1\.json no es texto UTF-8 \(byte \d+\)"):
        load_task_document(bad)
