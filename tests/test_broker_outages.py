"""Broker outages through the real embedded broker: a worker waits out a stall of any length.

The broker is paused with SIGSTOP while the worker has records in flight, for longer than the
30 s after which the worker used to give up and die; after SIGCONT every event is scored,
every alert is on the alert topic, and it is the same worker process that did it.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterator

import orjson
import pytest

from bankguard.backtest.runner import Config, resolve_source, run_backtest
from bankguard.broker import EmbeddedBroker, free_port
from bankguard.kafka import bankguard_topics, ensure_topics
from bankguard.monitoring import scrape_samples
from bankguard.producers.publisher import ScenarioPublisher
from bankguard.rules.config import load_rules
from bankguard.scenarios import SCENARIOS
from bankguard.settings import KafkaSettings, Settings
from bankguard.stream_agents.sink import BatchSink
from bankguard.stream_agents.sink_metrics import SinkWatch
from bankguard.topics import Topics
from conftest import RunningWorker, start_worker
from kafka_helpers import read_topic, wait_until

PAUSE_S = 38.0  # longer than the old 30 s delivery deadline, as short as proves it


@pytest.fixture
def paused_broker(tmp_path) -> Iterator[EmbeddedBroker]:
    """A broker of this test's own: pausing the session's would stall every other test's client."""
    with EmbeddedBroker(port=free_port(), log_path=tmp_path / "broker.log") as running:
        yield running
        if running.process is not None and running.process.pid is not None:
            os.kill(running.process.pid, signal.SIGCONT)  # never leave it stopped, whatever failed


@pytest.fixture
def outage_settings(settings: Settings, paused_broker: EmbeddedBroker) -> Settings:
    kafka = settings.kafka.model_copy(update={"bootstrap_servers": paused_broker.bootstrap_servers})
    settings = settings.model_copy(update={"kafka": kafka})
    ensure_topics(settings, bankguard_topics(settings))
    return settings


def gauge(worker: RunningWorker, name: str) -> float:
    return sum(sample.value for sample in scrape_samples(worker.metrics_url, name) if sample.name == name)


@pytest.mark.broker
def test_worker_rides_out_a_broker_pause_longer_than_the_old_deadline(outage_settings, paused_broker, tmp_path):
    settings = outage_settings
    report = ScenarioPublisher(settings, list(SCENARIOS), rate=5_000, seed=14, speed=0).run(max_events=30_000)
    assert report.failed == 0 and report.unacknowledged == 0
    log_path = tmp_path / "worker.log"
    worker = start_worker(settings, log_path)
    pid = worker.process.pid
    broker_pid = paused_broker.process.pid
    try:
        # Pause the broker as soon as the worker scores: it is then mid-stream, with records in flight.
        wait_until(lambda: sum(worker.totals("bankguard_events").values()) > 0, "first events scored",
                   timeout_s=90, check=worker.assert_alive, every_s=0.05)
        os.kill(broker_pid, signal.SIGSTOP)
        try:
            wait_until(lambda: gauge(worker, "bankguard_sink_stalled_seconds") >= PAUSE_S,
                       f"a {PAUSE_S:.0f} s stall on the worker's gauge", timeout_s=PAUSE_S + 30,
                       check=worker.assert_alive, every_s=1.0)
            assert gauge(worker, "bankguard_sink_unacknowledged_records") > 0
            assert sum(worker.totals("bankguard_events").values()) < report.produced, "paused mid-stream"
        finally:
            os.kill(broker_pid, signal.SIGCONT)

        worker.wait_for("bankguard_events", lambda totals: sum(totals.values()) >= report.produced, timeout_s=180)
        wait_until(lambda: gauge(worker, "bankguard_sink_unacknowledged_records") == 0
                   and gauge(worker, "bankguard_sink_stalled_seconds") == 0, "the sink drained",
                   timeout_s=60, check=worker.assert_alive)
        streamed = {alert["alert_id"] for alert in
                    (orjson.loads(r.value) for r in read_topic(settings, Topics(settings.topics.prefix).alerts))}
        assert worker.process.alive() and worker.process.pid == pid, "the same worker, never restarted"
    finally:
        worker.process.stop()

    log = log_path.read_text()
    # One line when a stall starts and one when it ends, not a line per check.
    stalls = log.count("sink stalled:")
    assert stalls >= 1 and log.count("sink recovered:") == stalls, log[-3000:]
    assert "DeliveryFailed" not in log and "Traceback" not in log, log[-3000:]
    # The alerts a clean pass over the same events raises: nothing was lost while the broker slept.
    run = run_backtest(settings, resolve_source("kafka", settings), [Config("A", None, load_rules())])
    expected = {row["alert_id"] for row in run.detections["A"].records()}
    assert expected, "the traffic raises alerts"
    assert streamed == expected, (f"missing {len(expected - streamed)}, unexpected {len(streamed - expected)}")


def test_a_stall_is_logged_once_and_exported_while_it_lasts(caplog):
    """A record no broker can acknowledge (nothing listens on the port): the watch logs the
    stall once past its threshold, however often it checks, and the gauges grow with it."""
    sink = BatchSink(Settings(kafka=KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")))
    now = [0.0]
    watch = SinkWatch(sink, log_after_s=5.0, clock=lambda: now[0])
    try:
        watch.check()
        assert watch.stalled_s() == 0.0, "nothing waits yet"
        sink.send("alerts", b"key", b"value")
        with caplog.at_level(logging.WARNING, logger="bankguard.stream_agents.sink_metrics"):
            for second in range(1, 31):
                now[0] = float(second)
                watch.check()
                if second == 4:
                    assert not caplog.records, "not before the threshold"
        assert [r.getMessage() for r in caplog.records] == [
            ("sink stalled: 1 record(s) unacknowledged for 5 s; waiting for the broker (offsets are not "
            "committed until it answers; batches pause once the sink is full)")]
        gauges = {family.name: family.samples[0].value for family in watch.collect()}
        assert gauges == {"bankguard_sink_unacknowledged_records": 1, "bankguard_sink_stalled_seconds": 30.0}
    finally:
        sink.producer.purge()
        sink.producer.close()  # or librdkafka keeps dialling the dead port for the rest of the run
