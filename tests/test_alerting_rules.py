"""Alerting as code: Prometheus rules (promtool), Alertmanager routing (amtool) and
inhibition (a real Alertmanager), and the runbook every alert links to.

promtool, amtool and Alertmanager come from Debian's packages, which the project's
setup installs (scripts/install-system-packages.sh); a missing binary fails, it does not skip.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from bankguard.broker import free_port
from conftest import starts_processes
from bankguard.monitoring import (
    ALERTMANAGER_BINARIES,
    ScrapeTargets,
    alertmanager_argv,
    find_binary,
    prometheus_config,
    rule_files,
)

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "dashboards" / "alerting" / "bankguard.rules.yml"
RULE_TESTS = REPO / "dashboards" / "alerting" / "tests" / "bankguard.rules.test.yml"
ALERTMANAGER_CONFIG = REPO / "dashboards" / "alertmanager" / "alertmanager.yml"
RUNBOOK = REPO / "docs" / "runbook.md"
RUNBOOK_URL = "https://github.com/bankguard/bankguard/blob/main/docs/runbook.md"

EXPECTED_ALERTS = {
    "BankGuardHighRiskRatio", "BankGuardConsumerLagGrowing", "BankGuardLatencySLOBreach",
    "BankGuardDeadLetterRate", "BankGuardScenarioStalled", "BankGuardWorkerDown",
    "BankGuardDetectorSilent", "BankGuardProducerDeliveryFailures", "BankGuardRulesConfigRejected",
    "BankGuardSinkStalled", "BankGuardDetectorPrecisionLow", "BankGuardDetectionRecallLow",
    "BankGuardAlertVolumeOverBudget", "BankGuardScoreDrift", "BankGuardEvaluatorDown",
}
RECEIVER_BY_SEVERITY = {"critical": "pager", "warning": "ticket"}
INSTALL_HINT = "install Debian's prometheus and prometheus-alertmanager (scripts/install-system-packages.sh as root)"


def tool(*names: str) -> str:
    path = find_binary(*names)
    if path is None:
        pytest.fail(f"{' / '.join(names)} not on PATH: {INSTALL_HINT}")
    return path


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def alerting_rules() -> dict[str, dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}


def github_anchor(heading: str) -> str:
    """GitHub's heading slug: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def runbook_sections() -> dict[str, str]:
    parts = re.split(r"^## (.+)$", RUNBOOK.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return {github_anchor(title): body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


# --- Prometheus rules -------------------------------------------------------------


def test_the_embedded_stack_loads_the_rules():
    assert RULES in rule_files()


@pytest.mark.broker
def test_promtool_check_rules():
    result = run(tool("promtool"), "check", "rules", *map(str, rule_files()))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.broker
def test_promtool_unit_tests_pass():
    result = run(tool("promtool"), "test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.broker
def test_promtool_unit_tests_catch_a_broken_rule(tmp_path):
    """The unit tests are not vacuous: a rule at the wrong threshold fails them."""
    (tmp_path / "tests").mkdir()
    broken = RULES.read_text().replace("bankguard_high_risk_ratio) > 0.2", "bankguard_high_risk_ratio) > 0.5")
    assert broken != RULES.read_text()
    (tmp_path / RULES.name).write_text(broken)
    shutil.copy(RULE_TESTS, tmp_path / "tests" / RULE_TESTS.name)
    result = run(tool("promtool"), "test", "rules", str(tmp_path / "tests" / RULE_TESTS.name))
    assert result.returncode != 0 and "BankGuardHighRiskRatio" in result.stdout + result.stderr


def test_the_expected_alerts_exist():
    assert set(alerting_rules()) == EXPECTED_ALERTS


def test_every_alert_is_unit_tested_firing_and_not_firing():
    cases = [case for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
             for case in test.get("alert_rule_test", [])]
    for alert in EXPECTED_ALERTS:
        outcomes = {bool(case["exp_alerts"]) for case in cases if case["alertname"] == alert}
        assert outcomes == {True, False}, f"{alert}: needs a firing and a not-firing case"
    firing = [alert for case in cases for alert in case["exp_alerts"]]
    assert all(alert.get("exp_labels") and alert.get("exp_annotations") for alert in firing)


@pytest.mark.parametrize("alert", sorted(EXPECTED_ALERTS))
def test_alert_metadata_and_runbook(alert):
    rule = alerting_rules()[alert]
    assert re.fullmatch(r"BankGuard[A-Z][A-Za-z0-9]+", alert), "CamelCase alert names"
    assert rule["labels"]["severity"] in RECEIVER_BY_SEVERITY
    annotations = rule["annotations"]
    assert annotations["summary"].strip() and annotations["description"].strip()
    assert annotations["runbook_url"] == f"{RUNBOOK_URL}#{alert.lower()}"
    section = runbook_sections().get(alert.lower())
    assert section is not None, f"docs/runbook.md has no '## {alert}' section"
    for part in ("**Meaning.**", "**First checks.**", "**Mitigation.**"):
        assert part in section, f"{alert}: runbook section lacks {part}"


def test_runbook_has_no_section_without_an_alert():
    assert set(runbook_sections()) == {alert.lower() for alert in EXPECTED_ALERTS}


def test_rules_select_the_scrape_jobs_that_exist():
    """A renamed scrape job would silently blind `up{job=...}` alerts."""
    generated = prometheus_config(ScrapeTargets(["w:1"], ["p:2"], ["e:3"]), alertmanager=None, rule_files=[])
    compose = yaml.safe_load((REPO / "dashboards" / "prometheus" / "prometheus.yml").read_text())
    for config in (generated, compose):
        jobs = {job["job_name"] for job in config["scrape_configs"]}
        for rule in alerting_rules().values():
            assert set(re.findall(r'job="([^"]+)"', rule["expr"])) <= jobs


# --- Alertmanager routing ---------------------------------------------------------


@pytest.mark.broker
def test_amtool_check_config():
    result = run(tool("amtool"), "check-config", str(ALERTMANAGER_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_inhibit_rule_has_equal():
    for rule in yaml.safe_load(ALERTMANAGER_CONFIG.read_text())["inhibit_rules"]:
        assert rule.get("equal"), f"inhibit rule without equal mutes unrelated alerts: {rule}"


def route_cases() -> Iterator[tuple[dict[str, str], str]]:
    for alert, rule in sorted(alerting_rules().items()):
        severity = rule["labels"]["severity"]
        yield {"alertname": alert, "severity": severity, "scenario": "aml_kyc"}, RECEIVER_BY_SEVERITY[severity]
    # Nothing falls through the cracks: an alert without a known severity still files a ticket.
    yield {"alertname": "SomethingElse"}, "ticket"
    yield {"alertname": "SomethingElse", "severity": "info"}, "ticket"


@pytest.mark.broker
@pytest.mark.parametrize(("labels", "receiver"), list(route_cases()),
                         ids=lambda value: ",".join(f"{k}={v}" for k, v in value.items())
                         if isinstance(value, dict) else value)
def test_amtool_routes(labels, receiver):
    result = run(tool("amtool"), "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}",
                 f"--verify.receivers={receiver}", *(f"{k}={v}" for k, v in labels.items()))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receiver


@pytest.mark.broker
def test_amtool_routes_detects_a_wrong_receiver():
    result = run(tool("amtool"), "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}",
                 "--verify.receivers=ticket", "alertname=BankGuardWorkerDown", "severity=critical")
    assert result.returncode != 0


# --- Alertmanager inhibition, on a real Alertmanager ----------------------------------


@pytest.fixture(scope="module")
@starts_processes
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = tool(*ALERTMANAGER_BINARIES)
    data = tmp_path_factory.mktemp("alertmanager")
    url = f"http://127.0.0.1:{free_port()}"
    log = (data / "alertmanager.log").open("w")
    process = subprocess.Popen(alertmanager_argv(binary, ALERTMANAGER_CONFIG, data, url.removeprefix("http://")),
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"{url}/-/ready", timeout=1)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"Alertmanager did not start: {(data / 'alertmanager.log').read_text()}")
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def inhibited(url: str, alerts: list[dict[str, str]]) -> dict[tuple[str, ...], bool]:
    """Post ``alerts``; return whether each one is inhibited, keyed by its sorted label values."""
    request = urllib.request.Request(f"{url}/api/v2/alerts", method="POST",
                                     data=json.dumps([{"labels": labels} for labels in alerts]).encode(),
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=5)
    with urllib.request.urlopen(f"{url}/api/v2/alerts", timeout=5) as response:
        state = {tuple(sorted(alert["labels"].items())): bool(alert["status"]["inhibitedBy"])
                 for alert in json.load(response)}
    return {tuple(sorted(labels.items())): state[tuple(sorted(labels.items()))] for labels in alerts}


def test_worker_down_inhibits_throughput_symptoms_only(alertmanager):
    def alert(name: str, **labels: str) -> dict[str, str]:
        return {"alertname": name, "severity": "critical", "cluster": "c1", **labels}

    worker_down = alert("BankGuardWorkerDown", job="bankguard-worker", instance="w1:6066")
    muted = [alert("BankGuardScenarioStalled", scenario="aml_kyc"),
             alert("BankGuardLatencySLOBreach", scenario="credit_card")]
    kept = [alert("BankGuardHighRiskRatio", scenario="aml_kyc"),
            alert("BankGuardDeadLetterRate", scenario="aml_kyc", severity="warning")]
    state = inhibited(alertmanager, [worker_down, *muted, *kept])
    assert [state[tuple(sorted(a.items()))] for a in [worker_down, *muted, *kept]] == [
        False, True, True, False, False]


def test_worker_down_does_not_mute_another_cluster(alertmanager):
    down = {"alertname": "BankGuardWorkerDown", "severity": "critical", "cluster": "c2a", "instance": "w1:6066"}
    stalled = {"alertname": "BankGuardScenarioStalled", "severity": "critical", "cluster": "c2b", "scenario": "aml_kyc"}
    assert list(inhibited(alertmanager, [down, stalled]).values()) == [False, False]


def test_stalled_scenario_mutes_its_own_silent_detectors(alertmanager):
    stalled = {"alertname": "BankGuardScenarioStalled", "severity": "critical", "cluster": "c3", "scenario": "aml_kyc"}
    same = {"alertname": "BankGuardDetectorSilent", "severity": "warning", "cluster": "c3",
            "scenario": "aml_kyc", "detector": "aml_kyc.structuring"}
    other = same | {"scenario": "credit_card", "detector": "large_amount"}
    assert list(inhibited(alertmanager, [stalled, same, other]).values()) == [False, True, False]


def test_critical_mutes_warning_of_the_same_alert_and_scenario(alertmanager):
    critical = {"alertname": "BankGuardDeadLetterRate", "severity": "critical", "cluster": "c4", "scenario": "aml_kyc"}
    warning = critical | {"severity": "warning"}
    elsewhere = warning | {"scenario": "credit_card"}
    other_alert = warning | {"alertname": "BankGuardConsumerLagGrowing"}
    assert list(inhibited(alertmanager, [critical, warning, elsewhere, other_alert]).values()) == [
        False, True, False, False]
