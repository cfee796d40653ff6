"""User mistakes end in one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest
from confluent_kafka.admin import AdminClient

from bankguard.broker import free_port
from kafka_helpers import wait_until

pytestmark = pytest.mark.broker  # every test runs a `bankguard` command


def bankguard(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bankguard", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


@pytest.mark.parametrize(("args", "needle"), [
    (["produce", "--bogus"], "--bogus"),
    (["produce", "--scenarios", "credit_card,nope"], "nope"),
    (["produce", "--rate", "-3"], "--rate"),
    (["ingest", "statements", "/no/such/file.csv"], "not found"),
    (["frobnicate"], "frobnicate"),
    (["up", "--summary", "s.json"], "--duration"),
])
def test_usage_mistakes(args, needle):
    assert_one_line_error(bankguard(*args), needle)


def test_invalid_setting_in_the_environment():
    result = bankguard("topics", env=os.environ | {"BANKGUARD_TOPICS__PARTITIONS": "zero"})
    assert_one_line_error(result, "topics.partitions")


def test_unreachable_cluster():
    port = free_port()
    result = bankguard("topics", env=os.environ | {"BANKGUARD_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{port}"})
    assert_one_line_error(result, "cannot reach Kafka")


def test_broker_on_a_busy_port():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert_one_line_error(bankguard("broker", "--port", str(port)), "busy")


def test_broker_without_its_binary():
    result = bankguard("broker", "--port", str(free_port()),
                       env=os.environ | {"CALF_TANSU_BIN": "/nonexistent/tansu"})
    assert_one_line_error(result, "binary not found")


def test_broker_command_serves_topics_and_stops_cleanly(tmp_path):
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "bankguard", "broker", "--port", str(port)],
                               stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        line = process.stderr.readline()
        assert f"127.0.0.1:{port}" in line, line
        topics = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"}).list_topics(timeout=10).topics
        assert "bankguard.tx.credit_card" in topics and "bankguard.dlq" in topics
        assert len(topics["bankguard.tx.credit_card"].partitions) == 6
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(20) == 0
    def port_closed() -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) != 0

    wait_until(port_closed, "the broker process gone with its port", timeout_s=10)
