"""Prometheus and Alertmanager for the embedded stack: binaries, configs, launch commands.

The configs are generated from the stack's actual ports, so Prometheus scrapes exactly
the workers and producers that run.
"""

from __future__ import annotations

import shutil
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

import bankguard.dashboards

PROMETHEUS_BINARY = "prometheus"
ALERTMANAGER_BINARIES = ("prometheus-alertmanager", "alertmanager")  # Debian's name first
DASHBOARDS_DIR = Path(bankguard.dashboards.__file__).parent  # shipped as package data
RULES_DIR = DASHBOARDS_DIR / "alerting"
PRODUCTION_ALERTMANAGER = DASHBOARDS_DIR / "alertmanager" / "alertmanager.yml"


def find_binary(*names: str) -> str | None:
    """First of ``names`` on PATH (Debian puts them in /usr/bin)."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class ScrapeTargets:
    workers: list[str]
    producers: list[str] = field(default_factory=list)
    evaluators: list[str] = field(default_factory=list)


def prometheus_config(targets: ScrapeTargets, *, alertmanager: str | None,
                      rule_files: list[Path], scrape_interval_s: float = 5.0) -> dict:
    config: dict = {
        "global": {
            "scrape_interval": f"{scrape_interval_s:g}s",
            "evaluation_interval": f"{scrape_interval_s:g}s",
        },
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {"job_name": "bankguard-worker", "static_configs": [{"targets": targets.workers}]},
        ],
    }
    if targets.producers:
        config["scrape_configs"].append(
            {"job_name": "bankguard-producer", "static_configs": [{"targets": targets.producers}]}
        )
    if targets.evaluators:
        config["scrape_configs"].append(
            {"job_name": "bankguard-evaluator", "static_configs": [{"targets": targets.evaluators}]}
        )
    if alertmanager:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    return config


def alertmanager_config(webhook_url: str | None = None) -> dict:
    """The embedded stack's Alertmanager: one receiver (an optional webhook), quick grouping,
    and the production config's inhibition rules, so a local run mutes what production mutes."""
    receiver: dict = {"name": "default"}
    if webhook_url:
        receiver["webhook_configs"] = [{"url": webhook_url, "send_resolved": True}]
    return {
        "route": {
            "receiver": "default",
            "group_by": ["alertname", "scenario"],
            "group_wait": "5s",
            "group_interval": "30s",
            "repeat_interval": "4h",
        },
        "inhibit_rules": yaml.safe_load(PRODUCTION_ALERTMANAGER.read_text())["inhibit_rules"],
        "receivers": [receiver],
    }


def write_yaml(path: Path, document: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def prometheus_argv(binary: str, config: Path, data_dir: Path, listen: str) -> list[str]:
    return [binary, f"--config.file={config}", f"--storage.tsdb.path={data_dir}",
            f"--web.listen-address={listen}", "--storage.tsdb.retention.time=2d"]  # no lifecycle API


def alertmanager_argv(binary: str, config: Path, data_dir: Path, listen: str) -> list[str]:
    return [binary, f"--config.file={config}", f"--storage.path={data_dir}",
            f"--web.listen-address={listen}", "--cluster.listen-address="]


def rule_files() -> list[Path]:
    """The committed alerting rules, when present."""
    return sorted(RULES_DIR.glob("*.rules.yml")) if RULES_DIR.is_dir() else []


def scrape_samples(url: str, metric: str, timeout_s: float = 2.0) -> list[Sample]:
    """The samples of metric family ``metric`` at a /metrics URL (``_total``, ``_bucket``...)."""
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        text = response.read().decode()
    return [sample for family in text_string_to_metric_families(text) if family.name == metric
            for sample in family.samples]


def scrape_totals(url: str, metric: str, label: str, timeout_s: float = 2.0) -> dict[str, float]:
    """Sum the samples of counter ``metric`` at a /metrics URL, grouped by one label."""
    totals: dict[str, float] = {}
    for sample in scrape_samples(url, metric, timeout_s):
        if sample.name == f"{metric}_total" and label in sample.labels:
            key = sample.labels[label]
            totals[key] = totals.get(key, 0.0) + sample.value
    return totals
