"""The import rules of the house, read from the source with `ast` (nothing is imported).

Rooms, from the bottom up: `errors` and `defaults` import nothing of partisim; `files`, `listen`
and `images` only `errors`; `sim` only `errors` and itself; `protocol` and `fleet` only those
below them; `worker`, `serve` and `orchestrator` the shared rooms and themselves, never
`cli`; `worker` and `serve` never import each other or `orchestrator`; `orchestrator`
reaches serve only through `serve.client`; `serve` (a server) never imports rich, which
belongs to the terminal side; `cli` may import anything. And no module takes part in an
import cycle, counting imports inside functions too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "partisim"

#: room -> rooms it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "defaults": set(),
    "files": {"errors"},
    "listen": {"errors"},
    "images": {"errors", "defaults"},
    "sim": {"errors"},
    "protocol": {"errors", "sim"},
    "fleet": {"errors", "sim", "protocol", "defaults", "version"},
    "worker": {"errors", "files", "listen", "images", "sim", "protocol", "fleet", "defaults", "version"},
    "serve": {"errors", "files", "listen", "sim", "protocol", "fleet", "defaults", "version"},
    "orchestrator": {"errors", "files", "listen", "sim", "protocol", "fleet", "defaults", "version", "serve"},
    "cli": {
        "errors",
        "files",
        "listen",
        "images",
        "sim",
        "protocol",
        "fleet",
        "defaults",
        "worker",
        "serve",
        "orchestrator",
        "version",
    },
    "main": {"cli"},
    "version": set(),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _room(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "version"  # partisim/__init__.py: only __version__
    if parts[1] == "__main__":
        return "main"
    return parts[1]


def _resolve(name: str, modules: dict[str, Path]) -> str:
    """The module an import lands on (a package's __init__ when not a submodule)."""
    while name not in modules and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _imports(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            names = [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            if name == "partisim" or name.startswith("partisim."):
                target = _resolve(name, modules)
                if target != module:
                    found.add(target)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: _imports(m, p, modules) for m, p in modules.items()}


def test_every_module_belongs_to_a_known_room(graph: dict[str, set[str]]) -> None:
    unknown = sorted(m for m in graph if _room(m) not in ALLOWED)
    assert not unknown, f"modules outside the rooms of the house: {unknown}"


def test_rooms_import_only_what_the_rules_allow(graph: dict[str, set[str]]) -> None:
    broken = []
    for module, targets in graph.items():
        room = _room(module)
        for target in targets:
            other = _room(target)
            if other != room and other not in ALLOWED[room]:
                broken.append(f"{module} -> {target}")
    assert not broken, "imports against the rules:\n" + "\n".join(sorted(broken))


#: the one module of serve that the orchestrator may import (serve's client and the types it answers)
SERVE_DOOR = "partisim.serve.client"
#: third-party packages a room must not import: serve is a server, terminal rendering is not its job
FORBIDDEN_THIRD_PARTY = {"serve": {"rich"}}


def _third_party(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_the_orchestrator_reaches_serve_only_through_its_client(graph: dict[str, set[str]]) -> None:
    broken = sorted(
        f"{m} -> {t}"
        for m, targets in graph.items()
        if _room(m) == "orchestrator"
        for t in targets
        if _room(t) == "serve" and t != SERVE_DOOR
    )
    assert not broken, "the orchestrator imports serve past serve.client:\n" + "\n".join(broken)


def test_rooms_keep_off_forbidden_libraries() -> None:
    broken = sorted(
        f"{module} imports {lib}"
        for module, path in _modules().items()
        for lib in _third_party(path) & FORBIDDEN_THIRD_PARTY.get(_room(module), set())
    )
    assert not broken, "\n".join(broken)


def test_nothing_but_the_entry_points_imports_cli(graph: dict[str, set[str]]) -> None:
    offenders = sorted(
        m for m, targets in graph.items() if _room(m) not in ("cli", "main") and any(_room(t) == "cli" for t in targets)
    )
    assert not offenders


def test_no_import_cycles(graph: dict[str, set[str]]) -> None:
    # Tarjan's strongly connected components: any component with two or more modules is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_the_rules_can_fail(tmp_path: Path) -> None:
    """The checker itself sees a forbidden import and a cycle when there is one."""
    fake = {"partisim.worker.a": {"partisim.orchestrator.b"}, "partisim.orchestrator.b": {"partisim.worker.a"}}
    assert any(_room(t) not in ALLOWED[_room(m)] for m, ts in fake.items() for t in ts)
    with pytest.raises(AssertionError):
        test_no_import_cycles(fake)
    # the orchestrator past serve's door, and serve drawing with rich
    with pytest.raises(AssertionError):
        test_the_orchestrator_reaches_serve_only_through_its_client(
            {"partisim.orchestrator.x": {"partisim.serve.queue.store"}}
        )
    assert _room("partisim.serve.queue.store") == "serve"
    rich_user = tmp_path / "table.py"
    rich_user.write_text("from rich.table import Table\nimport os\n")
    assert _third_party(rich_user) == {"rich", "os"}


def test_no_lazily_exported_name_is_also_a_submodule() -> None:
    """``partisim.sim`` exports its names lazily (PEP 562). A submodule with the same name
    as one of them (``sim/simulate.py`` beside the function ``simulate``), imported directly
    before the name was first read, made ``partisim.sim.simulate`` the module: 58 tests
    failed with "'module' object is not callable"."""
    from partisim import sim

    here = Path(sim.__file__).parent
    clashes = [name for name in sim._WHERE if (here / f"{name}.py").exists() or (here / name).is_dir()]
    assert clashes == []
    # and the export resolves to the function whatever was imported first
    import importlib

    importlib.import_module("partisim.sim.frames")
    assert callable(sim.simulate)
