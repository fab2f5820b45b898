"""Task files, repeat and sweeps -> validated task specs."""

from __future__ import annotations

import json

import pytest

from partisim.errors import ParamsError
from partisim.serve.queue.specs import load_task_file, parse_int_list, parse_submission, parse_tasks, sweep


def test_repeat_and_aliases_give_full_api_params():
    specs = parse_tasks(
        [
            {"benchmark": "benchmark_cython.py", "params": {"NUM_PARTICULAS": 50, "steps": 3}, "repeat": 3},
            {"engine": "numpy", "params": {"SEMILLA": 9}, "timeout": 12},
        ]
    )
    assert len(specs) == 4
    assert [s.benchmark for s in specs] == ["cython"] * 3 + ["numpy"]
    assert specs[0].params["NUM_PARTICULAS"] == 50 and specs[0].params["NUM_PASOS"] == 3
    assert specs[0].params["ANCHO_MUNDO"] == 800.0  # defaults filled in
    assert specs[3].timeout == 12.0 and specs[3].params["SEMILLA"] == 9


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ([{"benchmark": "python", "params": {"NUM_PARTICULAS": 0}}], "NUM_PARTICULAS"),
        ([{"benchmark": "../evil.py"}], "benchmark desconocido"),
        ([{"params": {}}], "falta benchmark"),
        ([{"benchmark": "python", "colour": 1}], "clave desconocida 'colour'"),
        ([{"benchmark": "python", "repeat": 0}], "repeat"),
        ([{"benchmark": "python", "timeout": -1}], "timeout"),
        ([{"benchmark": "cython", "threads": 0}], "threads debe estar entre 1 y 1024"),
        ([{"benchmark": "cython", "threads": 2.5}], "threads debe ser un número entero"),
        ([{"benchmark": "cython", "threads": "4"}], "threads debe ser un número entero"),
        ([], "vacía"),
        ({"jobs": []}, "se esperaba una lista"),
        ("hola", "se esperaba una lista"),
    ],
)
def test_bad_tasks_name_what_is_wrong(data, needle):
    with pytest.raises(ParamsError) as err:
        parse_tasks(data, "tareas.json")
    assert needle in err.value.message
    assert "tareas.json" in err.value.message


def test_second_task_is_named_in_the_error():
    with pytest.raises(ParamsError, match="tarea 2: NUM_PASOS"):
        parse_tasks([{"benchmark": "python"}, {"benchmark": "python", "params": {"NUM_PASOS": "x"}}])


def test_submission_shapes():
    one, batch = parse_submission({"benchmark": "python"})
    assert len(one) == 1 and batch is None
    many, batch = parse_submission({"tasks": [{"benchmark": "python", "repeat": 2}], "batch": "mi-lote_1"})
    assert len(many) == 2 and batch == "mi-lote_1"
    with pytest.raises(ParamsError, match="batch"):
        parse_submission({"tasks": [{"benchmark": "python"}], "batch": "no vale/espacio"})


def test_task_file_errors_name_the_file_and_line(tmp_path):
    bad = tmp_path / "malo.json"
    bad.write_text('[{"benchmark": "python",}]', encoding="utf-8")
    with pytest.raises(ParamsError, match=r"malo\.json: JSON inválido en la línea 1"):
        load_task_file(bad)
    with pytest.raises(ParamsError, match="no existe el archivo de tareas"):
        load_task_file(tmp_path / "nada.json")
    good = tmp_path / "bueno.json"
    good.write_text(json.dumps({"tasks": [{"benchmark": "python", "repeat": 2}]}), encoding="utf-8")
    assert len(load_task_file(good)) == 2


def test_sweep_is_the_cartesian_product():
    specs = sweep(["python", "cython"], [100, 1000], [500], parse_int_list("1-10", "--seeds"))
    assert len(specs) == 2 * 2 * 1 * 10
    combos = {(s.benchmark, s.params["NUM_PARTICULAS"], s.params["SEMILLA"]) for s in specs}
    assert len(combos) == 40
    assert {s.params["NUM_PASOS"] for s in specs} == {500}
    assert len(sweep(["numpy"], [10], [1, 2], [5], repeat=3)) == 6


def test_int_lists_and_ranges():
    assert parse_int_list("1-3,7,2", "--seeds") == [1, 2, 3, 7]
    for bad in ("", "a", "5-1", "1-x"):
        with pytest.raises(ParamsError, match="--seeds"):
            parse_int_list(bad, "--seeds")
    with pytest.raises(ParamsError, match="NUM_PARTICULAS"):
        sweep(["python"], [0], [1], [1])


def test_threads_of_a_task_file_and_of_a_sweep(tmp_path):
    path = tmp_path / "hilos.json"
    path.write_text(
        json.dumps(
            [
                {"benchmark": "cython", "params": {"NUM_PARTICULAS": 50}, "threads": 4, "repeat": 2},
                {"benchmark": "python"},
            ]
        ),
        encoding="utf-8",
    )
    specs = load_task_file(path)
    assert [s.threads for s in specs] == [4, 4, 1]
    assert {s.threads for s in sweep(["cython"], [10, 20], [1], [1], threads=2)} == {2}
    assert {s.threads for s in sweep(["cython"], [10], [1], [1])} == {1}
    with pytest.raises(ParamsError, match="--threads"):
        sweep(["cython"], [10], [1], [1], threads=0)
