"""The page an SRE gets: a high-risk burst in one scenario, through the real worker, a real
Prometheus loading the committed rules and a real Alertmanager, to a webhook receiver."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import pytest

from bankguard.broker import free_port
from bankguard.monitoring import (
    ALERTMANAGER_BINARIES, PROMETHEUS_BINARY, ScrapeTargets, alertmanager_argv, alertmanager_config,
    find_binary, prometheus_argv, prometheus_config, rule_files, write_yaml,
)
from bankguard.processes import ManagedProcess
from scoring_helpers import event, send

HOST = "127.0.0.1"
SECOND = timedelta(seconds=1)


class WebhookReceiver:
    """Alertmanager's webhook target: keeps every notification it is posted."""

    def __init__(self) -> None:
        received = self.notifications = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.url = f"http://{HOST}:{self.server.server_port}/pager"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def firing(self, alertname: str) -> list[dict]:
        return [alert for note in self.notifications for alert in note["alerts"]
                if alert["labels"]["alertname"] == alertname and alert["status"] == "firing"]


@pytest.fixture
def monitoring(worker, tmp_path: Path):
    prometheus, alertmanager = find_binary(PROMETHEUS_BINARY), find_binary(*ALERTMANAGER_BINARIES)
    assert prometheus and alertmanager, "install them with scripts/install-monitoring.sh"
    webhook = WebhookReceiver()
    am_listen, prom_listen = f"{HOST}:{free_port()}", f"{HOST}:{free_port()}"
    am_config = alertmanager_config(webhook.url)
    am_config["route"]["group_wait"] = "1s"
    processes = [
        ManagedProcess("alertmanager", alertmanager_argv(
            alertmanager, write_yaml(tmp_path / "am.yml", am_config), tmp_path / "am-data", am_listen),
            log_path=tmp_path / "alertmanager.log").start(),
        ManagedProcess("prometheus", prometheus_argv(
            prometheus, write_yaml(tmp_path / "prom.yml", prometheus_config(
                ScrapeTargets([urlparse(worker.metrics_url).netloc]), alertmanager=am_listen,
                rule_files=rule_files(), scrape_interval_s=1)),
            tmp_path / "prom-data", prom_listen), log_path=tmp_path / "prometheus.log").start(),
    ]
    yield webhook, f"http://{prom_listen}"
    for process in processes:
        process.stop()


def prometheus_alerts(url: str) -> list[dict]:
    with urllib.request.urlopen(f"{url}/api/v1/alerts", timeout=5) as response:
        return json.load(response)["data"]["alerts"]


def test_high_risk_burst_fires_for_that_scenario_only_and_reaches_the_webhook(settings, worker, monitoring):
    webhook, prometheus = monitoring
    calm = [event("credit_card", f"CARD-{i}", i * SECOND) for i in range(150)]
    # Gambling memos on 150 transfers: every one a high-severity keyword hit.
    burst = [event("aml_kyc", f"ACC-{i}", i * SECOND, memo="赌资") for i in range(150)]
    send(settings, calm + burst)
    worker.wait_for("bankguard_events", lambda t: t.get("aml_kyc", 0) >= 150 and t.get("credit_card", 0) >= 150)

    deadline = time.monotonic() + 150  # the rule's `for: 1m`, plus scrape, evaluation and grouping
    while time.monotonic() < deadline and not webhook.firing("BankGuardHighRiskRatio"):
        time.sleep(1)
    paged = webhook.firing("BankGuardHighRiskRatio")
    assert paged, "no BankGuardHighRiskRatio notification reached the webhook"
    assert {alert["labels"]["scenario"] for alert in paged} == {"aml_kyc"}
    assert all(alert["labels"]["severity"] == "critical" for alert in paged)
    firing = [a for a in prometheus_alerts(prometheus)
              if a["labels"]["alertname"] == "BankGuardHighRiskRatio" and a["state"] == "firing"]
    assert [a["labels"]["scenario"] for a in firing] == ["aml_kyc"]
