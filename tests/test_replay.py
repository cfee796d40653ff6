"""``bankguard replay`` through the real broker: a time range into shadow topics, exactly once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
import yaml
from confluent_kafka import Consumer, Producer

from bankguard.backtest.replay import Checkpoint, ReplayPlan, default_checkpoint_path, replay, resolve_topics
from bankguard.broker import free_port
from bankguard.kafka import TopicSpec, bankguard_topics, client_config, ensure_topics, producer_config
from bankguard.rules.config import DEFAULT_CONFIG_PATH
from bankguard.rules.publish import publish_rules
from bankguard.settings import Settings, settings_env
from bankguard.topic_range import TimeRange, iso_ms, parse_time
from bankguard.topics import Topics
from conftest import start_worker
from kafka_helpers import read_topic
from scoring_helpers import T0 as SCORING_T0
from scoring_helpers import event, send, summary, worker_alerts
from test_cli_errors import assert_one_line_error

T0 = parse_time("2026-03-01T08:00:00Z")
Row = tuple  # (partition, key, value, headers, timestamp_ms)


def publish(settings: Settings, topic: str, rows: list[Row]) -> None:
    producer = Producer(producer_config(settings, **{"message.max.bytes": 4_000_000}))
    for partition, key, value, headers, stamp in rows:
        producer.produce(topic, value, key, partition=partition, headers=headers, timestamp=stamp)
    assert producer.flush(15) == 0


def read_rows(settings: Settings, topic: str, expected: int) -> list[Row]:
    """Every record of ``topic`` in (partition, offset) order, header lists intact; read to the
    end once ``expected`` records arrived, so a duplicate would be seen too."""
    records = sorted(read_topic(settings, topic, expected=expected), key=lambda r: (r.partition, r.offset))
    return [(r.partition, r.key, r.value, r.header_list, r.timestamp_ms) for r in records]


def bankguard(settings: Settings, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bankguard", "replay", *args], env=settings_env(settings),
                          capture_output=True, text=True, timeout=timeout)


def in_window(rows: list[Row], start: int, end: int) -> list[Row]:
    """What replay must deliver: the window's rows, each partition in publishing (offset) order."""
    return sorted((r for r in rows if start <= r[4] < end), key=lambda r: r[0])  # sort is stable


def test_replays_exactly_the_range_keeping_partitions_keys_values_headers_and_timestamps(settings, tmp_path):
    topics = Topics(settings.topics.prefix)
    cards = [
        (0, b"k0", b"just before", None, T0 - 1),
        (0, b"k0", b"at from", [("trace", b"1")], T0),
        (0, b"k0", b"later stamp", None, T0 + 500),
        (0, b"k0", b"earlier stamp, later offset", None, T0 + 300),  # never reordered
        (1, b"k1", b"repeated headers", [("h", b"1"), ("h", b"2"), ("empty", None)], T0 + 40),
        (1, b"k4", None, None, T0 + 41),  # a null value stays null
        (1, b"k1", b"last in range", None, T0 + 9_999),
        (1, b"k1", b"at to", None, T0 + 10_000),
        (2, None, b"no key", None, T0 + 7),
        (2, b"k2", b"after to", None, T0 + 20_000),
    ]
    aml = [(p, f"acc-{p}".encode(), f"aml {i}".encode(), None, T0 + 1_000 * i) for i in range(12) for p in (i % 3,)]
    publish(settings, topics.scenario("credit_card"), cards)
    publish(settings, topics.scenario("aml_kyc"), aml)
    # Scenario keys stand for the configured prefix's scenario topics.
    plan = ReplayPlan(tuple(resolve_topics("credit_card, aml_kyc", settings.topics.prefix)),
                      TimeRange(T0, T0 + 10_000))
    assert plan.topics == (topics.scenario("aml_kyc"), topics.scenario("credit_card"))

    result = replay(settings, plan, Checkpoint.open(tmp_path / "cp.json", plan))

    assert result.complete and not result.stopped and result.failed == 0
    for source, rows, count in ((topics.scenario("credit_card"), cards, 7), (topics.scenario("aml_kyc"), aml, 10)):
        wanted = in_window(rows, T0, T0 + 10_000)
        assert len(wanted) == count
        assert read_rows(settings, f"shadow.{source}", count) == wanted
        assert result.counts[f"shadow.{source}"] == count
    meta = Consumer(client_config(settings.kafka) | {"group.id": "x"}).list_topics(timeout=10).topics
    assert len(meta[f"shadow.{topics.scenario('credit_card')}"].partitions) == 3
    saved = json.loads((tmp_path / "cp.json").read_text())
    assert saved["complete"] is True and saved["params"]["to_prefix"] == "shadow."
    assert saved["offsets"][topics.scenario("credit_card")] == {"0": 4, "1": 3, "2": 1}


def test_speed_spaces_records_by_their_timestamp_gaps(settings, tmp_path):
    topic = Topics(settings.topics.prefix).scenario("forex_trading")
    gaps_ms = [0, 150, 400, 460, 900, 1_300, 1_500, 1_800, 2_100, 2_160, 2_600, 2_900, 3_000]
    rows = [(i % 3, f"t{i % 3}".encode(), f"r{i}".encode(), None, T0 + at) for i, at in enumerate(gaps_ms)]
    publish(settings, topic, rows)
    plan = ReplayPlan((topic,), TimeRange(T0, T0 + 60_000))
    released: list[tuple[float, int]] = []

    started = time.monotonic()
    replay(settings, plan, Checkpoint.open(tmp_path / "cp.json", plan), speed=2,
           on_publish=lambda m: released.append((time.monotonic(), m.timestamp()[1])))
    took = time.monotonic() - started

    # The three partitions are interleaved by timestamp, not replayed one after another.
    assert [stamp for _, stamp in released] == [T0 + at for at in gaps_ms]
    first_wall, first_stamp = released[0]
    lateness = [(wall - first_wall) - (stamp - first_stamp) / 1000 / 2 for wall, stamp in released]
    # Every record is due at its timestamp offset / speed from the first (measured where the
    # replayer hands it to the producer). It is never released early, and late only by
    # scheduling jitter: under 3 ms here, under 10 ms with the CPUs oversubscribed 3 times.
    # 40 ms is about half the smallest paced gap (60 ms / 2 = 30 ms is the one exception), so
    # a replay that ignored the timestamps or slept per gap with drift would fail; every gap
    # between consecutive records then matches timestamp gap / speed within 40 ms too.
    assert min(lateness) >= -0.002, lateness
    assert max(lateness) <= 0.04, lateness
    assert 1.498 <= released[-1][0] - first_wall <= 1.54
    assert took >= 1.5


def test_an_interrupted_replay_resumes_without_losing_or_repeating_a_record(settings, tmp_path):
    topic = Topics(settings.topics.prefix).scenario("wealth_product")
    rows = [(i % 3, f"c{i % 7}".encode(), f"v{i}".encode(), None, T0 + 10 * i) for i in range(300)]
    publish(settings, topic, rows)
    plan = ReplayPlan((topic,), TimeRange(T0, T0 + 3_000))
    path = default_checkpoint_path(settings, plan)
    published = []

    first = replay(settings, plan, Checkpoint.open(path, plan), on_publish=published.append,
                   should_stop=lambda: len(published) >= 120)
    assert first.stopped and not first.complete and first.replayed == 120
    assert json.loads(path.read_text())["complete"] is False
    state = Checkpoint.open(path, plan)
    assert state.replayed == 120 and sum(state.offsets.values()) == 120

    second = replay(settings, plan, state)
    assert second.complete and second.replayed == 180
    assert read_rows(settings, f"shadow.{topic}", 300) == in_window(rows, T0, T0 + 3_000)

    # Once complete, the same replay publishes nothing, from Python and from the CLI.
    assert replay(settings, plan).replayed == 0
    again = bankguard(settings, "--topics", "wealth_product", "--from", iso_ms(T0), "--to", iso_ms(T0 + 3_000))
    assert again.returncode == 0 and "already complete (300 records)" in again.stderr, again.stderr
    assert len(read_rows(settings, f"shadow.{topic}", 300)) == 300
    # --restart replays it all again, deliberately.
    restarted = bankguard(settings, "--topics", "wealth_product", "--from", iso_ms(T0), "--to", iso_ms(T0 + 3_000),
                          "--restart")
    assert restarted.returncode == 0, restarted.stderr
    assert len(read_rows(settings, f"shadow.{topic}", 600)) == 600


def test_ctrl_c_checkpoints_and_the_same_command_resumes(settings, tmp_path):
    topic = Topics(settings.topics.prefix).scenario("insurance_claims")
    rows = [(i % 3, f"p{i % 5}".encode(), f"v{i}".encode(), None, T0 + 100 * i) for i in range(60)]
    publish(settings, topic, rows)
    args = ["--topics", topic, "--from", iso_ms(T0), "--to", iso_ms(T0 + 60_000), "--to-prefix", "canary."]
    ensure_topics(settings, [TopicSpec(f"canary.{topic}", 3)])  # a target may exist already
    running = subprocess.Popen([sys.executable, "-m", "bankguard", "replay", *args, "--speed", "1"],
                               env=settings_env(settings), stderr=subprocess.PIPE, text=True)
    try:
        assert read_topic(settings, f"canary.{topic}", expected=1, timeout_s=20)  # under way
        running.send_signal(signal.SIGINT)
        stderr = running.communicate(timeout=20)[1]
    finally:
        running.kill()
    assert running.returncode == 130 and "interrupted" in stderr and "Traceback" not in stderr, stderr

    resumed = bankguard(settings, *args)  # the speed may differ: it is no part of the checkpoint
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from checkpoint" in resumed.stderr
    assert read_rows(settings, f"canary.{topic}", 60) == in_window(rows, T0, T0 + 60_000)


def test_a_refused_record_fails_the_run_and_is_not_checkpointed(settings, tmp_path):
    topic = Topics(settings.topics.prefix).scenario("cyber_security")
    big = b"x" * 1_500_000  # over the replay producer's 1 MB message.max.bytes
    rows = [(0, b"h0", b"before", None, T0 + 1), (1, b"h1", b"other", None, T0 + 2),
            (0, b"h0", big, None, T0 + 3), (0, b"h0", b"after", None, T0 + 4)]
    publish(settings, topic, rows)
    checkpoint = tmp_path / "cp.json"
    args = ["--topics", topic, "--from", iso_ms(T0), "--to", iso_ms(T0 + 1_000), "--checkpoint", str(checkpoint)]

    first = bankguard(settings, *args)
    assert_one_line_error(first, "replayed 2 records", "1 failed to publish", "too large")
    assert first.returncode == 1
    # The rerun resumes at the refused record (without repeating the one before it) and fails again.
    again = bankguard(settings, *args)
    assert again.returncode == 1 and "Traceback" not in again.stderr
    resuming, last = again.stderr.strip().splitlines()
    assert "resuming from checkpoint" in resuming and "(2 records already replayed)" in resuming
    assert "replayed 0 records, event time" in last and "1 failed to publish" in last and "too large" in last
    assert [r[2] for r in read_rows(settings, f"shadow.{topic}", 2)] == [b"before", b"other"]
    saved = json.loads(checkpoint.read_text())
    assert saved["complete"] is False and saved["offsets"][topic] == {"0": 1, "1": 1}


@pytest.mark.parametrize(("args", "needles"), [
    (["--topics", "credit_card,no.such.topic"], ["unknown topic no.such.topic"]),
    (["--from", "yesterday"], ["--from", "'yesterday'"]),
    (["--to", "2026-13-45"], ["--to"]),
    (["--from", "2026-03-02", "--to", "2026-03-01"], ["empty time range"]),
    (["--from", "2026-03-01", "--to", "2026-03-01"], ["empty time range"]),
    (["--to-prefix", ""], ["--to-prefix"]),
    (["--speed", "-1"], ["--speed"]),
])
def test_user_mistakes_end_in_one_line(settings, args, needles):
    base = {"--topics": "credit_card", "--from": "2026-03-01", "--to": "2026-03-02"}
    for option, value in zip(args[::2], args[1::2], strict=True):
        base[option] = value
    assert_one_line_error(bankguard(settings, *[x for pair in base.items() for x in pair]), *needles)


def test_an_empty_range_of_all_topics_says_so(settings):
    result = bankguard(settings, "--topics", "all", "--from", "2020-01-01", "--to", "2020-01-02")
    assert_one_line_error(result, f"no records in {settings.topics.prefix}.tx.aml_kyc, ",
                          "between 2020-01-01T00:00:00Z and 2020-01-02T00:00:00Z")
    assert result.returncode == 1
    assert not (settings.run_dir / "replay").exists() or not any((settings.run_dir / "replay").iterdir())


def test_bad_checkpoints_are_reported(settings, tmp_path):
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text("{not json")
    args = ["--topics", "credit_card", "--from", "2026-03-01", "--to", "2026-03-02", "--checkpoint"]
    assert_one_line_error(bankguard(settings, *args, str(corrupt)), "cannot read checkpoint", "--restart")
    other = tmp_path / "other.json"
    plan = ReplayPlan((Topics(settings.topics.prefix).scenario("atm_netbank"),), TimeRange(T0, T0 + 1))
    Checkpoint(other, plan).save()
    assert_one_line_error(bankguard(settings, *args, str(other)), "belongs to another replay")


def test_unreachable_cluster(settings):
    settings = settings.model_copy(update={"kafka": settings.kafka.model_copy(
        update={"bootstrap_servers": f"127.0.0.1:{free_port()}"})})
    result = bankguard(settings, "--topics", "credit_card", "--from", "2026-03-01", "--to", "2026-03-02")
    assert_one_line_error(result, "cannot reach Kafka")


def test_a_shadow_worker_scores_the_replayed_range_with_its_own_rules(settings, tmp_path):
    day = timedelta(days=1)
    aml = lambda entity, at, amount, memo=None, direction="out": event(  # noqa: E731
        "aml_kyc", entity, at, amount=amount, memo=memo, direction=direction)
    in_range = [
        aml("acc-b", 0 * day, 10_000, "工资", "in"), aml("acc-b", 1 * day, 10_000, "工资", "in"),
        aml("acc-b", 10 * day, 60_000, "年终奖"),  # an outlier with a background: medium
        aml("acc-e", 10 * day, 70_000),  # no history: high
        aml("acc-f", 10 * day, 250_000, "转账"),  # over the top tier: critical
        aml("acc-x", 10 * day, 30_000, "转账"),  # flagged only by the shadow's 20,000 threshold
    ]
    outside = [aml("acc-y", -day, 90_000), aml("acc-z", 20 * day, 250_000)]  # before --from, at --to
    send(settings, in_range + outside)

    shadow = settings.model_copy(update={
        "topics": settings.topics.model_copy(update={"prefix": f"shadow.{settings.topics.prefix}"}),
        "worker": settings.worker.model_copy(update={"web_port": free_port(), "data_dir": tmp_path / "shadow-data"}),
    })
    ensure_topics(shadow, bankguard_topics(shadow))
    rules = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    rules["version"] = "shadow-20k"
    rules["large_amount"]["amount_threshold"] = 20_000
    (tmp_path / "shadow.yaml").write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    publish_rules(shadow, tmp_path / "shadow.yaml")
    worker = start_worker(shadow, tmp_path / "shadow-worker.log")
    try:
        result = bankguard(settings, "--topics", "aml_kyc", "--from", iso_ms(int(SCORING_T0.timestamp() * 1000)),
                           "--to", iso_ms(int((SCORING_T0 + 20 * day).timestamp() * 1000)))
        assert result.returncode == 0, result.stderr
        assert f"replayed 6 records to shadow.{settings.topics.prefix}.tx.aml_kyc (6)" in result.stderr
        alerts = worker_alerts(shadow, worker)
        assert worker.totals("bankguard_events").get("aml_kyc") == len(in_range)  # nothing outside the range
    finally:
        worker.process.stop()
    assert summary(alerts) == {("acc-b", "large_amount", "medium"), ("acc-e", "large_amount", "high"),
                               ("acc-f", "large_amount", "critical"), ("acc-x", "large_amount", "high")}
    assert {a["rules_config_version"] for a in alerts} == {"shadow-20k"}
    assert {a["event_id"] for a in alerts} <= {e["event_id"] for e in in_range}
    # Production's own alerts topic is untouched: only the shadow scored.
    assert read_topic(settings, Topics(settings.topics.prefix).alerts) == []
