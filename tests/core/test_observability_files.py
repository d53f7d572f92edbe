"""docker/: the alert rules, Prometheus config, Grafana dashboard and compose wiring."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from prometheus_client import REGISTRY

from apps.core.health import CHECKS
from apps.core.metrics import PipelineCollector

DOCKER = Path(settings.BASE_DIR) / "docker"
ALERTS = DOCKER / "prometheus" / "alerts.yml"
PROMETHEUS = DOCKER / "prometheus" / "prometheus.yml"
DASHBOARD = DOCKER / "grafana" / "dashboards" / "assistant.json"
COMPOSE = DOCKER / "compose.yaml"
PROMTOOL = shutil.which("promtool")
no_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not on PATH (Debian: apt-get install prometheus)"
)
SUFFIXES = re.compile(r"_(bucket|count|sum|total)$")


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - promtool from PATH, our own files
        [PROMTOOL, *args], capture_output=True, text=True, timeout=60, check=False
    )


@no_promtool
def test_promtool_accepts_the_alert_rules():
    checked = promtool("check", "rules", str(ALERTS))
    assert checked.returncode == 0, checked.stdout + checked.stderr


@no_promtool
def test_promtool_accepts_the_prometheus_config():
    # Syntax only: the rule file and token paths exist inside the container, not here.
    checked = promtool("check", "config", "--syntax-only", str(PROMETHEUS))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_alerts_cover_what_was_asked():
    rules = {
        rule["alert"]: rule["expr"]
        for group in yaml.safe_load(ALERTS.read_text())["groups"]
        for rule in group["rules"]
    }
    assert "assistant_webhook_ack_seconds_bucket" in rules["WebhookAckSlow"]
    assert "0.99" in rules["WebhookAckSlow"]
    assert 'status=~"5..|4.."' in rules["WebhookErrors"]
    assert "< 0.995" in rules["ModelSuccessLow"]
    assert "assistant_oldest_pending_message_age_seconds" in rules["MessagesWaiting"]
    assert 'outcome="failed"' in rules["DeliveryFailures"]


def exported_names(transactional_db) -> set[str]:
    """Every metric the platform exports: recorded ones and those computed when scraped."""
    names = {family.name for family in REGISTRY.collect() if family.name.startswith("assistant_")}
    return names | {family.name for family in PipelineCollector().collect()}


def used_names(text: str) -> set[str]:
    return {SUFFIXES.sub("", name) for name in re.findall(r"\bassistant_[a-z_]+", text)}


def test_alerts_and_dashboard_only_use_metrics_that_exist(transactional_db):
    exported = exported_names(transactional_db)
    assert "assistant_queue_depth" in exported and "assistant_webhook_ack_seconds" in exported
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = " ".join(
        target["expr"] for panel in dashboard["panels"] for target in panel["targets"]
    )
    unknown = (used_names(ALERTS.read_text()) | used_names(expressions)) - exported
    # Counters are exported without _total in the family name: compare without it.
    assert not unknown, unknown


def test_the_dashboard_uses_the_provisioned_datasource():
    dashboard = json.loads(DASHBOARD.read_text())
    datasource = yaml.safe_load(
        (DOCKER / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"][0]
    assert dashboard["uid"] and dashboard["panels"]
    assert {
        target["datasource"]["uid"] for panel in dashboard["panels"] for target in panel["targets"]
    } == {datasource["uid"]}


def test_compose_runs_prometheus_and_grafana_under_a_profile():
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["observability"]
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DOCKER / source).exists(), source
    # Every healthcheck runs `manage.py healthcheck` with checks it knows.
    tests = [services[name]["healthcheck"]["test"] for name in ("worker", "connectors")]
    dockerfile = (DOCKER / "Dockerfile").read_text()
    [line] = [line for line in dockerfile.splitlines() if line.strip().startswith('CMD ["python"')]
    tests.append(json.loads(line.strip()[len("CMD ") :]))
    for test in tests:
        command = [part for part in test if part != "CMD"]
        assert command[:3] == ["python", "manage.py", "healthcheck"]
        checks = [command[i + 1] for i, part in enumerate(command) if part == "--check"]
        assert checks and set(checks) <= set(CHECKS)
    assert services["worker"]["environment"]["METRICS_WORKER_PORT"] == "9808"
    scrape = yaml.safe_load(PROMETHEUS.read_text())["scrape_configs"]
    assert {config["job_name"] for config in scrape} == {"assistant-web", "assistant-worker"}
