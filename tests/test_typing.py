"""`Any` in the signatures of partisim, counted from the source with `ast` (issue 22, §4).

A signature annotation "holds Any" when its unparsed text contains ``Any``: a parameter
(positional, keyword-only, ``*args``, ``**kwargs``) or a return. What is left sits where
the data is untyped by nature (the OpenAPI schema walk, third-party hooks such as uvicorn's
protocol or argparse's parser, dynamic stand-ins, the Dask executor that another line of
work rewrites). The ceilings are today's counts, so the numbers can only go down: lower
them when you remove one, never raise them.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "partisim"

#: most signature annotations holding ``Any`` in src/partisim, and of them ``dict[str, Any]``
ANY_CEILING = 36
DICT_ANY_CEILING = 19
#: the only modules (or folders, ending in "/") where such an annotation may stay
EDGES = (
    "partisim/cli/__init__.py",  # the argparse stand-in that swallows other commands' options
    "partisim/cli/_output.py",  # the lazy proxy of rich's Console
    "partisim/listen/connections.py",  # uvicorn's HttpToolsProtocol.__init__ signature
    "partisim/serve/executors/",  # being rewritten by another line of work (issue 22 §2)
    "partisim/serve/web/openapi.py",  # the OpenAPI schema walk
    "partisim/worker/app.py",  # the OpenAPI schema of the worker
    "partisim/worker/payload.py",  # the JSON Schema of the task body
    "partisim/worker/runners/docker.py",  # the JSON a container printed, before SimResult takes it
)


def any_annotations(root: Path) -> list[tuple[str, int, str]]:
    """``(path, line, annotation)`` of every signature annotation under ``root`` whose
    text contains ``Any``; paths relative to ``root``'s parent."""
    found: list[tuple[str, int, str]] = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            a = node.args
            annotations = [arg.annotation for arg in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
            annotations += [a.vararg.annotation if a.vararg else None, a.kwarg.annotation if a.kwarg else None]
            annotations.append(node.returns)
            for annotation in annotations:
                if annotation is not None and "Any" in (text := ast.unparse(annotation)):
                    found.append((path.relative_to(root.parent).as_posix(), node.lineno, text))
    return found


def _listing(found: list[tuple[str, int, str]]) -> str:
    return "\n".join(f"  {path}:{line}: {text}" for path, line, text in found)


def test_any_in_signatures_stays_under_its_ceiling() -> None:
    found = any_annotations(PACKAGE)
    assert len(found) <= ANY_CEILING, (
        f"{len(found)} signature annotations hold Any (ceiling {ANY_CEILING}): type the new ones with the "
        f"models of partisim.protocol, sim.params, a TypedDict or JsonValue\n{_listing(found)}"
    )


def test_dict_str_any_stays_under_its_ceiling() -> None:
    found = [f for f in any_annotations(PACKAGE) if "dict[str, Any]" in f[2]]
    assert len(found) <= DICT_ANY_CEILING, (
        f"{len(found)} signature annotations hold dict[str, Any] (ceiling {DICT_ANY_CEILING})\n{_listing(found)}"
    )


def test_any_stays_at_the_edges() -> None:
    outside = [f for f in any_annotations(PACKAGE) if not any(f[0] == e or f[0].startswith(e) for e in EDGES)]
    assert not outside, f"Any in a signature outside the edge modules:\n{_listing(outside)}"


def test_the_count_sees_every_kind_of_signature_annotation(tmp_path: Path) -> None:
    # the rule itself can fail: each place an annotation can hold Any is counted once,
    # and annotations elsewhere (a variable, a field) are not signatures
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "m.py").write_text(
        "from typing import Any\n"
        "field: dict[str, Any] = {}\n"
        "def f(a: Any, /, b: dict[str, Any], *c: Any, d: list[Any], **e: Any) -> Any: ...\n"
        "async def g(x: int) -> tuple[Any, ...]: ...\n"
        "class C:\n"
        "    y: Any\n"
        "    def h(self, z: object) -> dict[str, Any]: ...\n",
        encoding="utf-8",
    )
    found = any_annotations(package)
    assert [(line, text) for _, line, text in found] == [
        (3, "Any"),
        (3, "dict[str, Any]"),
        (3, "list[Any]"),
        (3, "Any"),
        (3, "Any"),
        (3, "Any"),
        (4, "tuple[Any, ...]"),
        (7, "dict[str, Any]"),
    ]
    assert sum("dict[str, Any]" in text for _, _, text in found) == 2
