"""A real Prometheus scrapes a real serve and a real worker on loopback, with a bearer
token, using the example config users get (docs/prometheus/prometheus.yml) with only
the targets and the intervals changed. After a small batch, Prometheus's HTTP API
answers the completed count and a duration quantile, and the example's alert for "no
worker active" goes pending once the worker is gone.

Skipped when the `prometheus` binary is absent; required when PARTISIM_REQUIRE
contains `prometheus` (see helpers.prometheus)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import yaml
from helpers.processes import HOST_A, wait_for
from helpers.prometheus import DOCS, Prometheus, prometheus_tool
from helpers.workers import TINY
from prometheus_client.parser import text_string_to_metric_families
from queue_support import Cluster, wait_batch

from partisim.serve.client import ServerClient

pytestmark = pytest.mark.slow

SERVE_TOKEN = "serve-" + "s" * 26
WORKER_TOKEN = "worker-" + "w" * 25
BATCH = 6


def scrape_config(folder: Path, serve: str, workers: list[str]) -> Path:
    """The shipped example in ``folder``, scraping ``serve`` and ``workers`` every second."""
    config = yaml.safe_load((DOCS / "prometheus.yml").read_text(encoding="utf-8"))
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    jobs["partisim-serve"]["static_configs"] = [{"targets": [serve]}]
    jobs["partisim-workers"]["static_configs"] = [{"targets": workers}]
    shutil.copy(DOCS / "alertas.yml", folder / "alertas.yml")
    for name, token in (("serve.token", SERVE_TOKEN), ("workers.token", WORKER_TOKEN)):
        (folder / name).write_text(token + "\n", encoding="utf-8")
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def quantile_from_buckets(q: float, buckets: list[tuple[float, float]]) -> float:
    """What histogram_quantile computes from cumulative (upper bound, count) buckets:
    linear interpolation inside the bucket that holds the rank."""
    buckets = sorted(buckets)
    total = buckets[-1][1]
    rank = q * total
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if math.isinf(upper):
                return lower
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    raise AssertionError("no bucket holds the rank")


def serve_buckets(text: str) -> list[tuple[float, float]]:
    for family in text_string_to_metric_families(text):
        if family.name == "partisim_serve_task_duration_seconds":
            return [
                (float(s.labels["le"]), s.value)
                for s in family.samples
                if s.name.endswith("_bucket") and s.labels["outcome"] == "success"
            ]
    raise AssertionError("no duration histogram in serve's /metrics")


def test_prometheus_scrapes_serve_and_worker_and_answers_promql(cluster: Cluster, tmp_path: Path) -> None:
    prometheus_tool("prometheus")  # skip (or fail when required) before starting anything
    worker = cluster.worker(HOST_A, "worker-a", capacity=2, env={"PARTISIM_TOKEN": WORKER_TOKEN})
    config = cluster.config([("worker-a", worker.url)], worker_token=WORKER_TOKEN, max_concurrent_tasks=2)
    serve = cluster.serve(config, tmp_path / "q.db", token=SERVE_TOKEN, wait_workers=1)
    folder = tmp_path / "prometheus"
    folder.mkdir()
    prom = Prometheus(scrape_config(folder, f"{serve.host}:{serve.port}", [f"{worker.host}:{worker.port}"]), folder)
    cluster.procs.append(prom)
    prom.start()

    answers: list[tuple[str, object]] = []

    def ask(promql: str, expected: float | None = None) -> float | None:
        """Poll until ``promql`` gives ``expected`` (or any one sample), keep the answer."""
        found = wait_for(
            lambda: (v := prom.scalar(promql)) is not None and (expected is None or v == expected) and (v,),
            60,
            f"{promql} == {expected}",
        )[0]
        answers.append((promql, found))
        return found

    # both targets are scraped with their token
    ask('sum(up{job=~"partisim-.*"})', 2)
    assert {t["labels"]["job"]: t["health"] for t in prom.targets()} == {
        "partisim-serve": "up",
        "partisim-workers": "up",
    }

    with ServerClient(serve.url, token=SERVE_TOKEN) as client:
        batch = client.submit([{"benchmark": "cython", "params": TINY}] * BATCH).batch
        wait_batch(client, batch, 120)

    ask('partisim_serve_tasks{status="success"}', BATCH)
    ask('sum(partisim_worker_tasks_total{status="success"})', BATCH)
    ask("sum(partisim_serve_attempts_total)", BATCH)
    count = 'sum(partisim_serve_task_duration_seconds_count{outcome="success"})'
    ask(count, BATCH)
    quantile = 'histogram_quantile(0.9, sum by (le) (partisim_serve_task_duration_seconds_bucket{outcome="success"}))'
    p90 = ask(quantile)
    with serve.http() as http:
        expected = quantile_from_buckets(0.9, serve_buckets(http.get("/metrics").text))
    assert p90 == pytest.approx(expected, rel=1e-9) and 0 < p90 < 3600
    worker_p50 = ask("histogram_quantile(0.5, sum by (le) (partisim_worker_task_duration_seconds_bucket))")
    assert worker_p50 is not None and 0 < worker_p50 < 600
    ask('sum(partisim_serve_member_inflight{member="worker-a"})', 0)

    # the example's rules are loaded, and "no worker active" goes pending without the worker
    rules = [r["name"] for g in prom.api("rules")["groups"] for r in g["rules"]]
    assert "PartisimSinWorkersActivos" in rules and "PartisimFallosEnAumento" in rules
    worker.stop()
    ask('sum(partisim_serve_members{state="active"})', 0)
    pending = wait_for(
        lambda: [a for a in prom.api("alerts")["alerts"] if a["labels"]["alertname"] == "PartisimSinWorkersActivos"],
        60,
        "the alert PartisimSinWorkersActivos",
    )
    assert pending[0]["state"] in ("pending", "firing")
    answers.append(("ALERTS PartisimSinWorkersActivos", pending[0]["state"]))

    print("\nPromQL answered by Prometheus:")
    for promql, found in answers:
        print(f"  {promql}  ->  {found}")
