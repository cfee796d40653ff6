"""The embedded stack's Alertmanager receiver, over real HTTP: what it logs, keeps and refuses."""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bankguard.alert_receiver import AlertReceiver, summarise_log

LOGGER = "bankguard.alert_receiver"


def notification(status: str, *alerts: tuple[str, str, str]) -> dict:
    """An Alertmanager webhook payload (version 4) of (alertname, scenario, severity) alerts."""
    items = [{
        "status": status,
        "labels": {"alertname": name, "scenario": scenario, "severity": severity},
        "annotations": {"summary": f"{name} on {scenario}"},
        "startsAt": "2025-01-01T00:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2025-01-01T00:05:00Z",
        "generatorURL": "http://127.0.0.1:9090/graph",
        "fingerprint": f"{abs(hash((name, scenario))):016x}",
    } for name, scenario, severity in alerts]
    common = items[0]["labels"] if len(items) == 1 else {}
    return {
        "version": "4", "status": status, "receiver": "default",
        "groupKey": f'{{}}:{{alertname="{alerts[0][0]}"}}', "truncatedAlerts": 0,
        "groupLabels": {"alertname": alerts[0][0]}, "commonLabels": common, "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093", "alerts": items,
    }


def post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        error.close()
        return error.code


def post_json(url: str, payload: dict) -> int:
    return post(url, json.dumps(payload).encode())


def logged(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n"), "the log ends mid-line"
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[AlertReceiver]:
    with AlertReceiver(tmp_path / "alerts" / "notifications.jsonl") as running:
        yield running


HIGH_RISK = ("BankGuardHighRiskRatio", "aml_kyc", "critical")


def test_firing_and_resolved_notifications_are_logged_and_summarised(receiver, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    assert receiver.url == f"http://127.0.0.1:{receiver.port}/alerts"
    firing, resolved = notification("firing", HIGH_RISK), notification("resolved", HIGH_RISK)
    assert post_json(receiver.url, firing) == 200
    assert post_json(receiver.url, resolved) == 200

    lines = logged(receiver.log_path)
    assert [{k: v for k, v in line.items() if k != "received_at"} for line in lines] == [firing, resolved]
    assert receiver.notifications() == lines
    assert receiver.firing("BankGuardHighRiskRatio") == firing["alerts"]
    assert receiver.firing() == firing["alerts"]
    assert receiver.firing("BankGuardWorkerDown") == []

    first, second = (line["received_at"] for line in lines)
    summary = receiver.summary()
    assert summary == {
        "url": receiver.url, "log": str(receiver.log_path), "notifications": 2, "critical_fired": True,
        "alerts": [
            {"alertname": "BankGuardHighRiskRatio", "scenario": "aml_kyc", "severity": "critical", "status": "firing",
             "deliveries": 1, "first_received_at": first, "last_received_at": first},
            {"alertname": "BankGuardHighRiskRatio", "scenario": "aml_kyc", "severity": "critical",
             "status": "resolved", "deliveries": 1, "first_received_at": second, "last_received_at": second},
        ],
    }
    assert {k: v for k, v in summarise_log(receiver.log_path).items() if k != "url"} == {
        k: v for k, v in summary.items() if k != "url"}

    messages = [(record.levelno, record.getMessage()) for record in caplog.records if record.name == LOGGER]
    assert messages == [
        (logging.WARNING, "alert firing: BankGuardHighRiskRatio scenario=aml_kyc severity=critical"),
        (logging.INFO, "alert resolved: BankGuardHighRiskRatio scenario=aml_kyc severity=critical"),
    ]


def test_summary_counts_repeated_deliveries_and_keeps_missing_labels_apart(receiver):
    warning = notification("firing", ("BankGuardConsumerLag", "forex_trading", "warning"))
    unlabelled = notification("firing", ("BankGuardConsumerLag", "x", "warning"))
    del unlabelled["alerts"][0]["labels"]["scenario"], unlabelled["alerts"][0]["labels"]["severity"]
    for payload in (warning, unlabelled, warning):
        assert post_json(receiver.url, payload) == 200

    summary = receiver.summary()
    times = [line["received_at"] for line in logged(receiver.log_path)]
    assert summary["critical_fired"] is False
    assert [(a["scenario"], a["severity"], a["deliveries"], a["first_received_at"], a["last_received_at"])
            for a in summary["alerts"]] == [("forex_trading", "warning", 2, times[0], times[2]),
                                            (None, None, 1, times[1], times[1])]
    assert summarise_log(receiver.log_path) == {**summary, "url": None}


def test_a_malformed_body_gets_400_and_the_next_notification_is_still_received(receiver, caplog, capsys):
    caplog.set_level(logging.INFO, logger=LOGGER)
    assert post(receiver.url, b"{not json") == 400
    assert post(receiver.url, b"\xff\xfe") == 400
    assert post_json(receiver.url, {"status": "firing", "receiver": "default"}) == 400
    assert post_json(receiver.url, {"alerts": [{"status": "firing", "labels": ["alertname"]}]}) == 400
    assert post_json(receiver.url, notification("firing", HIGH_RISK)) == 200

    assert len(receiver.notifications()) == 1
    assert len(logged(receiver.log_path)) == 1
    rejected = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING
                and "rejected" in r.getMessage()]
    assert len(rejected) == 4
    assert all(record.exc_info is None for record in caplog.records)
    assert "Traceback" not in capsys.readouterr().err


def test_concurrent_deliveries_all_land_as_whole_lines(receiver):
    names = [f"BankGuardAlert{i:02d}" for i in range(20)]
    start = threading.Barrier(len(names))
    statuses: dict[str, int] = {}

    def deliver(name: str) -> None:
        payload = notification("firing", *[(name, f"scenario_{j}", "warning") for j in range(50)])
        start.wait(timeout=10)
        statuses[name] = post_json(receiver.url, payload)

    threads = [threading.Thread(target=deliver, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert statuses == dict.fromkeys(names, 200)

    lines = logged(receiver.log_path)
    assert sorted(line["groupLabels"]["alertname"] for line in lines) == names
    assert all(len(line["alerts"]) == 50 for line in lines)
    assert summarise_log(receiver.log_path)["notifications"] == receiver.summary()["notifications"] == 20


def test_a_line_still_being_written_is_left_out_of_the_summary(tmp_path):
    path = tmp_path / "notifications.jsonl"
    whole = json.dumps({**notification("firing", HIGH_RISK), "received_at": "2025-01-01T00:00:01+00:00"})
    path.write_text(whole + "\n" + whole[:40], encoding="utf-8")
    summary = summarise_log(path)
    assert summary["notifications"] == 1
    assert summary["critical_fired"] is True


def test_a_stopped_receiver_refuses_connections_and_keeps_what_it_received(tmp_path):
    with AlertReceiver(tmp_path / "notifications.jsonl") as receiver:
        assert post_json(receiver.url, notification("firing", HIGH_RISK)) == 200
    with pytest.raises(urllib.error.URLError):
        post_json(receiver.url, notification("firing", HIGH_RISK))
    assert receiver.summary()["notifications"] == 1
