"""A real Prometheus (Debian's `prometheus` package) run as a subprocess on loopback.

    from helpers.prometheus import Prometheus, prometheus_tool

    prom = Prometheus(config_file, workdir).start()   # waits for /-/ready
    prom.query('partisim_serve_tasks{status="success"}')   # the instant vector's samples
    prom.stop()

`prometheus_tool(name)` is the path of `prometheus` or `promtool`; without it the test
is skipped with the reason, or fails when PARTISIM_REQUIRE contains `prometheus`
(`.ci/run` installs the package and requires the suite). The binary runs directly:
no systemd, storage in the test's directory, listening on 127.0.0.1 and a free port.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import httpx

from helpers.processes import SERVE_HOST, Spawned, free_port_on
from helpers.requirements import unavailable

__all__ = ["Prometheus", "prometheus_tool", "DOCS"]

#: the example scrape config and alerting rules shipped to users
DOCS = Path(__file__).resolve().parents[2] / "docs" / "prometheus"


def prometheus_tool(name: str = "prometheus") -> str:
    """Path of ``name`` (``prometheus`` or ``promtool``; ``PARTISIM_PROMETHEUS_BIN`` names
    the folder that holds both, default the PATH)."""
    folder = os.environ.get("PARTISIM_PROMETHEUS_BIN")
    found = shutil.which(name, path=folder) if folder else shutil.which(name)
    if found is None:
        unavailable(
            "prometheus",
            f"no hay {name} en {folder if folder else 'el PATH'}: instale Prometheus con "
            "`apt-get install prometheus` o indique su carpeta en PARTISIM_PROMETHEUS_BIN",
        )
    return str(found)


class Prometheus(Spawned):
    def __init__(self, config: Path, workdir: Path) -> None:
        super().__init__("prometheus", workdir)
        self.config = config
        self.workdir = workdir
        self.port = free_port_on(SERVE_HOST)
        self.url = f"http://{SERVE_HOST}:{self.port}"

    def start(self, timeout: float = 60.0) -> Prometheus:
        argv = [
            prometheus_tool("prometheus"),
            f"--config.file={self.config}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address={SERVE_HOST}:{self.port}",
            "--log.level=warn",
        ]
        self.launch(argv, cwd=self.workdir)
        self.wait_ready(lambda: self._get("/-/ready").status_code == 200, timeout)
        return self

    def _get(self, path: str, **params: str) -> httpx.Response:
        return httpx.get(self.url + path, params=params, timeout=10, trust_env=False)

    def api(self, path: str, **params: str) -> Any:
        """``data`` of an answer of the HTTP API (``/api/v1/...``); AssertionError if it failed."""
        answer = self._get("/api/v1/" + path, **params).json()
        assert answer["status"] == "success", answer
        return answer["data"]

    def query(self, promql: str) -> list[tuple[dict[str, str], float]]:
        """The instant vector ``promql`` gives now: (labels, value) per sample."""
        data = self.api("query", query=promql)
        assert data["resultType"] == "vector", data
        return [(item["metric"], float(item["value"][1])) for item in data["result"]]

    def scalar(self, promql: str) -> float | None:
        """The value of a query that gives one sample (None when it gives none)."""
        found = self.query(promql)
        assert len(found) <= 1, found
        return found[0][1] if found else None

    def targets(self) -> list[dict[str, Any]]:
        targets: list[dict[str, Any]] = self.api("targets")["activeTargets"]
        return targets
