"""`bankguard up` end to end: every part real, nothing lost, nothing left running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from bankguard.broker import free_port
from bankguard.scenarios import SCENARIOS
from bankguard.settings import Settings
from bankguard.stack import LiveClock
from kafka_helpers import wait_until

# Each test runs the whole stack, on the default monitoring ports when they are free: one at a
# time, or two starting together could both find a port free and one child fail to bind it.
pytestmark = [pytest.mark.broker, pytest.mark.xdist_group("bankguard-up")]


def stack_env(tmp_path: Path) -> tuple[dict[str, str], str]:
    marker = f"up{uuid.uuid4().hex[:8]}"
    env = os.environ | {
        "BANKGUARD_BROKER__PORT": str(free_port()),
        "BANKGUARD_WORKER__WEB_PORT": str(free_port()),
        "BANKGUARD_WORKER__DATA_DIR": str(tmp_path / "worker-data"),
        "BANKGUARD_TOPICS__PREFIX": marker,
        "BANKGUARD_RUN_DIR": str(tmp_path / "run"),
        "PYTHONUNBUFFERED": "1",
    }
    return env, marker


def processes_with(marker: str) -> list[int]:
    """Live processes that inherited this stack's environment."""
    needle = f"BANKGUARD_TOPICS__PREFIX={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes():
                state = (entry / "stat").read_text().split(") ")[1][0]
                if state != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_headless_run_loses_nothing(tmp_path):
    env, marker = stack_env(tmp_path)
    summary_path = tmp_path / "summary.json"
    result = subprocess.run(
        [sys.executable, "-m", "bankguard", "up", "--duration", "20", "--rate", "900",
         "--summary", str(summary_path), "--seed", "5"],
        env=env, capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(summary_path.read_text())
    assert summary["drained"] is True
    assert set(summary["scenarios"]) == set(SCENARIOS)
    for scenario, counts in summary["scenarios"].items():
        assert counts["produced"] > 0, scenario
        assert counts["consumed"] == counts["produced"], (scenario, counts)
        assert counts["dlq"] == 0, (scenario, counts)
        detection = counts["detection"]  # read back from the alert and truth topics
        assert detection["alerts"] == counts["alerts"], (scenario, "the topic holds what the workers counted")
        assert detection["tp"] <= min(detection["alerted_events"], detection["truth_events"])
        assert detection["alerted_events"] <= counts["alerts"]
        if detection["alerted_events"]:
            assert detection["precision"] == detection["tp"] / detection["alerted_events"]
        assert detection["truth_per_1000_events"] == 1000 * detection["truth_events"] / counts["consumed"]
        evaluated = counts["evaluator"]  # the evaluator read every alert and event before it stopped
        assert (evaluated["alerts"], evaluated["events"]) == (detection["alerts"], counts["produced"]), scenario
        assert evaluated["decided_alerts"] <= detection["alerted_events"]
    assert sum(counts["detection"]["truth_events"] for counts in summary["scenarios"].values()) > 0
    assert summary["broker"] == f"127.0.0.1:{env['BANKGUARD_BROKER__PORT']}"
    assert summary["metrics"] == [f"http://127.0.0.1:{env['BANKGUARD_WORKER__WEB_PORT']}/metrics"]
    assert summary["prometheus"] and summary["alertmanager"]
    deliveries = summary["alertmanager_notifications"]  # the receiver's log, read back
    assert Path(deliveries["log"]).is_file() and deliveries["notifications"] == len(
        Path(deliveries["log"]).read_text().splitlines())
    # Event time runs at the models' density: a day of it in well under a minute of wall clock.
    clock = LiveClock.for_density(900, len(SCENARIOS), Settings().producer.entities_per_scenario,
                                  Settings().producer.events_per_entity_per_day)
    span_s = (datetime.fromisoformat(summary["event_time"]["to"]) -
              datetime.fromisoformat(summary["event_time"]["from"])).total_seconds()
    assert span_s > 0.5 * clock.speed * summary["producer_elapsed_s"], (span_s, clock)
    assert processes_with(marker) == []


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def test_interactive_stack_is_scraped_and_ctrl_c_stops_every_process(tmp_path):
    env, marker = stack_env(tmp_path)
    process = subprocess.Popen([sys.executable, "-m", "bankguard", "up", "--rate", "300", "--workers", "2"],
                               env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        prometheus = None
        output = []
        while time.monotonic() < deadline and prometheus is None:
            line = process.stderr.readline()
            output.append(line)
            if "prometheus" in line and "http://" in line:
                prometheus = "http://" + line.split("http://")[1].split()[0].rstrip("│ ")
            assert process.poll() is None, "".join(output)
        assert prometheus, "".join(output)
        # Prometheus (real) scrapes both workers and the producer, and sees events flow.
        healthy: list = []
        while time.monotonic() < deadline:
            targets = _get_json(f"{prometheus}/api/v1/targets")["data"]["activeTargets"]
            healthy = [t["labels"]["job"] for t in targets if t["health"] == "up"]
            rate = _get_json(f"{prometheus}/api/v1/query?query=sum(bankguard_events_total)")["data"]["result"]
            if len(healthy) == 4 and rate and float(rate[0]["value"][1]) > 0:
                break
            time.sleep(1)
        assert sorted(healthy) == ["bankguard-evaluator", "bankguard-producer", "bankguard-worker", "bankguard-worker"]
        # broker, 2 workers, producer, desk, evaluator, prometheus, alertmanager
        assert len(processes_with(marker)) >= 8
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(90)
    assert code == 0, process.stderr.read()[-3000:]
    wait_until(lambda: processes_with(marker) == [], "every process of the stack gone", timeout_s=10)


def _stack_pid(marker: str, name: str) -> int:
    """The pid of the stack's child whose command line names ``name`` (tansu, worker...)."""
    for pid in processes_with(marker):
        try:
            argv = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(name.encode() in part for part in argv[:4]):
            return pid
    raise AssertionError(f"no {name} process in the stack")


@pytest.mark.parametrize(("victim", "command_part", "notice"), [
    ("broker", "tansu", "bankguard: broker was killed by SIGKILL; see "),
    ("worker", "worker", "bankguard: worker-0 was killed by SIGKILL; see "),
])
def test_a_killed_child_stops_the_stack_in_one_line(tmp_path, victim, command_part, notice):
    env, marker = stack_env(tmp_path)
    process = subprocess.Popen([sys.executable, "-m", "bankguard", "up", "--rate", "200"],
                               env=env, stderr=subprocess.PIPE, text=True)
    try:
        output = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not any(line.startswith("running;") for line in output):
            output.append(process.stderr.readline())
            assert process.poll() is None, "".join(output)
        os.kill(_stack_pid(marker, command_part), signal.SIGKILL)
        killed = time.monotonic()
        code = process.wait(60)
        took_s = time.monotonic() - killed
        rest = process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
    assert code == 1, rest
    lines = [line for line in rest.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(notice), rest[-3000:]
    assert took_s < 30, f"{victim}'s death took {took_s:.1f} s to stop the stack"
    wait_until(lambda: processes_with(marker) == [], "every process of the stack gone", timeout_s=10)
