"""The example scrape config and alerting rules in docs/prometheus/ are valid for
Prometheus (`promtool check config`, `promtool check rules`), and the alerts fire on
the series they are meant for (`promtool test rules`, with made-up series).

Skipped when promtool is absent; required when PARTISIM_REQUIRE contains `prometheus`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from helpers.prometheus import DOCS, prometheus_tool

# promtool's own unit-test format: input series, then what each alert must be at a time
RULE_TESTS = """
rule_files:
  - alertas.yml
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'partisim_serve_members{instance="serve:8000", job="partisim-serve", executor="http", state="active"}'
        values: '2 2 1 0 0 0 0 0'
      - series: 'partisim_serve_tasks{instance="serve:8000", job="partisim-serve", status="queued"}'
        values: '0+10x30'
      - series: 'partisim_serve_failures_total{instance="serve:8000", job="partisim-serve", reason="timeout"}'
        values: '0+5x20'
      - series: 'partisim_serve_failures_total{instance="serve:8000", job="partisim-serve", reason="rejected"}'
        values: '0x20'
    alert_rule_test:
      - eval_time: 2m
        alertname: PartisimSinWorkersActivos
        exp_alerts: []
      - eval_time: 6m
        alertname: PartisimSinWorkersActivos
        exp_alerts:
          - exp_labels: {severity: critical, instance: "serve:8000"}
            exp_annotations:
              summary: "NO HAY MÁQUINAS ACTIVAS en serve:8000"
              description: "partisim serve no tiene ningún worker activo desde hace 2 minutos. Compruebe
                que los workers están en marcha y que serve los alcanza (partisim workers)."
      - eval_time: 10m
        alertname: PartisimColaCreciendo
        exp_alerts: []
      - eval_time: 28m
        alertname: PartisimColaCreciendo
        exp_alerts:
          - exp_labels: {severity: warning, instance: "serve:8000", job: "partisim-serve", status: "queued"}
            exp_annotations:
              summary: "La cola de serve:8000 crece: 280 tareas en espera"
              description: "Las tareas en espera aumentan desde hace 15 minutos. Añada workers o revise
                por qué los actuales no terminan tareas."
      - eval_time: 3m
        alertname: PartisimFallosEnAumento
        exp_alerts: []
      - eval_time: 18m
        alertname: PartisimFallosEnAumento
        exp_alerts:
          - exp_labels: {severity: warning, instance: "serve:8000"}
            exp_annotations:
              summary: "Fallos en aumento en serve:8000: 5 tareas fallidas por minuto"
              description: "Vea el motivo en partisim_serve_failures_total{reason=...} y los mensajes
                en partisim results --status failed."
"""


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [prometheus_tool("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def _copy_docs(tmp_path: Path) -> Path:
    folder = tmp_path / "prometheus"
    shutil.copytree(DOCS, folder)
    for name in ("serve.token", "workers.token"):  # the config names them; promtool checks they exist
        (folder / name).write_text("un-token-de-prueba\n", encoding="utf-8")
    return folder


def test_the_example_config_and_rules_pass_promtool(tmp_path: Path) -> None:
    folder = _copy_docs(tmp_path)
    config = _promtool("check", "config", "prometheus.yml", cwd=folder)
    assert config.returncode == 0, config.stdout + config.stderr
    assert "SUCCESS" in config.stdout + config.stderr
    rules = _promtool("check", "rules", "alertas.yml", cwd=folder)
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "5 rules found" in rules.stdout + rules.stderr


def test_promtool_sees_a_broken_rule(tmp_path: Path) -> None:
    """The check above can fail: a rule with bad PromQL is refused."""
    folder = _copy_docs(tmp_path)
    text = (folder / "alertas.yml").read_text(encoding="utf-8")
    (folder / "alertas.yml").write_text(text.replace("== 0", "== == 0", 1), encoding="utf-8")
    rules = _promtool("check", "rules", "alertas.yml", cwd=folder)
    assert rules.returncode != 0


def test_the_alerts_fire_on_what_they_watch(tmp_path: Path) -> None:
    folder = _copy_docs(tmp_path)
    (folder / "alertas_test.yml").write_text(RULE_TESTS, encoding="utf-8")
    result = _promtool("test", "rules", "alertas_test.yml", cwd=folder)
    assert result.returncode == 0, result.stdout + result.stderr
