"""Shared by every suite: tests/ on sys.path (so suites import the shared helpers as
`helpers.<module>`: processes, workers, serve, config, results, requirements), and the
`slow` marker of the tiers.

The fast tier (`pytest -m "not slow"`) leaves out the suites that start many
processes each: end-to-end serve and dashboard runs, the browser and Docker suites,
the demo/menu/package/check flows and the worker's process-level tests. A test in
another module that takes more than a few seconds marks itself `slow`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parent
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

#: modules (paths under tests/) whose every test is slow
SLOW_MODULES = frozenset(
    {
        "dashboard/test_dashboard_api.py",
        "dashboard/test_dashboard_browser.py",
        "orchestrator/test_orch_check.py",
        "orchestrator/test_orch_demo.py",
        "orchestrator/test_orch_menu.py",
        "orchestrator/test_orch_package.py",
        "queue/test_queue_cli.py",
        "queue/test_queue_service.py",
        "worker/test_docker_runner.py",
        "worker/test_identity.py",
        "worker/test_isolation.py",
        "worker/test_root_files.py",
        "worker/test_schemathesis.py",
        "worker/test_shutdown.py",
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        where = Path(str(item.path)).resolve().relative_to(_TESTS).as_posix()
        if where in SLOW_MODULES or where.startswith("docker/") or item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of the Chromium to drive; skips (or fails, when required) without one."""
    from helpers.requirements import chromium_path

    return chromium_path()
