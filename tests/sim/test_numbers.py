"""One number style for people (issue 24 §5): decimal comma, thousands from five digits,
durations in the unit that fits, a decimal comma accepted where one number is typed."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from helpers.cli import run_cli

from partisim.sim import parse_params
from partisim.sim.numbers import NBSP, count, decimal, duration, integer, parse_number, significant


def test_integers_group_thousands_from_five_digits():
    assert [integer(n) for n in (7, 1000, 9999, 10_000, 11_799_222, -25_000)] == [
        "7",
        "1000",
        "9999",
        f"10{NBSP}000",
        f"11{NBSP}799{NBSP}222",
        f"-25{NBSP}000",
    ]


def test_decimals_take_a_comma():
    assert decimal(82.5, 1) == "82,5" and decimal(0.1, 2) == "0,10" and decimal(12345.678, 1) == f"12{NBSP}345,7"
    assert decimal(-0.25, 2) == "-0,25" and decimal(float("nan")) == "—"


def test_significant_digits_take_a_comma_too():
    assert [significant(x) for x in (0.032724, 133.33, 1.2e-07, 80.0)] == ["0,03272", "133,3", "1,2e-07", "80"]
    assert significant(14378.23, 6) == f"14{NBSP}378,2" and significant(float("inf")) == "—"
    # grouped like every other number, with no exponent where a person reads plain digits
    assert significant(1301290.4, 6) == f"1{NBSP}301{NBSP}290" and significant(9999.96) == f"10{NBSP}000"
    assert [significant(x) for x in (0.0, -0.5, 2.1, 100.0)] == ["0", "-0,5", "2,1", "100"]


def test_theory_and_run_print_no_decimal_point():
    # the numbers a person reads in `theory` and `run` use the decimal comma of every other table
    theory = _cli("theory", "--run", "-n", "60", "-s", "80")
    run = _cli("run", "-n", "60", "-s", "80")
    for done in (theory, run):
        assert done.returncode == 0, done.stderr
        printed = "\n".join(line for line in done.stdout.splitlines() if "Checksum" not in line)
        assert re.search(r"\d,\d", printed) and not re.search(r"\d\.\d", printed), printed


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(2.345, "2,35 s"), (0.0124, "12,4 ms"), (0.0001, "100 µs"), (0.00000085, "850 ns"), (0.0, "0 s"), (None, "—")],
)
def test_durations_use_the_unit_that_fits(seconds, shown):
    assert duration(seconds) == shown


def test_counts_agree_with_the_noun():
    assert count(1, "tarea", "tareas") == "1 tarea" and count(2, "tarea", "tareas") == "2 tareas"


@pytest.mark.parametrize(("text", "value"), [("0,05", 0.05), ("0.05", 0.05), (" 3 ", 3.0), ("-1,5", -1.5)])
def test_one_typed_number_takes_a_comma_or_a_point(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize("text", ["1,000.5", "1,2,3", "", "uno"])
def test_an_ambiguous_number_is_refused(text):
    with pytest.raises(ValueError):
        parse_number(text)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``partisim *args`` in this process (`helpers.cli.run_cli`)."""
    return run_cli(*args)


def test_run_takes_a_decimal_comma_as_the_dashboard_does():
    comma = _cli("run", "-n", "5", "-s", "3", "--dt", "0,05", "--json")
    point = _cli("run", "-n", "5", "-s", "3", "--dt", "0.05", "--json")
    assert comma.returncode == 0, comma.stderr
    same = ("checksum", "particle_collisions", "wall_collisions", "kinetic_energy")
    assert {k: json.loads(comma.stdout)[k] for k in same} == {k: json.loads(point.stdout)[k] for k in same}


def test_a_refused_packing_names_a_box_that_works():
    done = _cli("run", "-n", "200000", "-s", "200")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    text = " ".join(done.stderr.split())
    assert "fracción de empaquetamiento 32,7249" in text
    sizes = [
        tuple(int(part.replace(NBSP, "")) for part in pair.split(" × "))
        for pair in re.findall(r"(\d[\d\u00a0]* × \d[\d\u00a0]*)", done.stderr)
    ]
    assert len(sizes) == 2, done.stderr
    for width, height in sizes:  # both sizes are accepted, and keep the box's proportions
        params = parse_params({"particles": 200_000, "steps": 200, "width": width, "height": height})
        assert abs(params.width / params.height - 800 / 600) < 0.01
