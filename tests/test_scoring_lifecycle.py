"""The worker's life through the real broker: restarts, live rules updates, statements."""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.request
from datetime import timedelta

import orjson
import yaml
from confluent_kafka import Producer

from bankguard.features.incremental import EntityState
from bankguard.kafka import producer_config
from bankguard.rules.config import DEFAULT_CONFIG_PATH
from bankguard.rules.signing import sign, signing_key
from bankguard.settings import Settings, settings_env
from bankguard.stream_agents.dead_letters import DeadLetter
from bankguard.topics import Topics
from conftest import RunningWorker, start_worker
from kafka_helpers import read_topic, topic_ends, wait_committed, wait_until
from scoring_helpers import event, expected_cases, send, summary, worker_alerts, worker_cases

DAY = timedelta(days=1)
DEFAULT_RULES = DEFAULT_CONFIG_PATH


def salary_history(entity: str, months: int, amount: float = 10_000.0) -> list[dict]:
    return [event("aml_kyc", entity, i * 20 * DAY, amount=amount, memo="工资", direction="in") for i in range(months)]


def committing_every(settings: Settings, seconds: float) -> Settings:
    return settings.model_copy(update={"worker": settings.worker.model_copy(update={"commit_interval_s": seconds})})


def test_killed_worker_resumes_with_its_state_and_stable_alert_ids(settings, tmp_path):
    settings = committing_every(settings, 60.0)  # nothing committed before the kill
    history = [e for i in range(40) for e in salary_history(f"acc-{i}", 4)]
    first_large = [event("aml_kyc", f"acc-{i}", 81 * DAY, amount=60_000.0, memo="年终奖") for i in range(40)]
    worker = start_worker(settings, tmp_path / "worker-1.log")
    send(settings, history + first_large)
    worker.wait_for("bankguard_events", lambda t: t.get("aml_kyc", 0) >= len(history) + len(first_large))
    before = read_topic(settings, Topics(settings.topics.prefix).alerts, expected=40)
    worker.process.process.send_signal(signal.SIGKILL)  # no offset commit yet: all of it is redelivered
    worker.process.wait(10)

    worker = start_worker(committing_every(settings, 1.0), tmp_path / "worker-2.log")
    try:
        second_large = [event("aml_kyc", f"acc-{i}", 82 * DAY, amount=70_000.0, memo="年终奖") for i in range(40)]
        send(settings, second_large)
        # Whatever was committed before the kill (a rebalance commits too) is not redelivered:
        # the new worker has scored all there is once its group committed the topics' ends.
        alerts = worker_alerts(settings, worker)
    finally:
        worker.process.stop()
    ids = {}
    for alert in alerts:
        ids.setdefault((alert["event_id"], alert["detector"]["id"]), set()).add(alert["alert_id"])
    assert all(len(found) == 1 for found in ids.values()), "one id per event and detector"
    assert {orjson.loads(r.value)["alert_id"] for r in before} <= {a["alert_id"] for a in alerts}
    # Re-scored from scratch after the kill, the cases have the same ids and end the same:
    # the latest version of each is the case of its alerts, each alert once.
    assert worker_cases(settings) == expected_cases(alerts)
    # The baseline survived and was not double counted by the redelivery: the second large
    # amount sees 4 salaries and the first large amount, mean (40,000 + 60,000) / 5 = 20,000,
    # so 70,000 is an outlier (a double-counted history would give a mean of 16,666.67).
    second = [a for a in alerts if a["event_id"] in {e["event_id"] for e in second_large}]
    assert len(second) == 40
    assert {(a["evidence"]["history_count"], a["evidence"]["history_mean"]) for a in second} == {(5, 20_000.0)}


def test_state_written_at_a_commit_is_recovered_from_the_changelog(settings, tmp_path):
    """Offsets committed, then the worker killed: nothing is redelivered, so the restarted
    worker knows the history only from the entity states the commit point wrote."""
    settings = committing_every(settings, 1.0)
    topics = Topics(settings.topics.prefix)
    history = [e for i in range(20) for e in salary_history(f"acc-{i}", 4)]
    worker = start_worker(settings, tmp_path / "worker-1.log")
    send(settings, history)
    wait_committed(settings, topic_ends(settings, [topics.scenario("aml_kyc")]), check=worker.assert_alive)
    states = {r.key: EntityState.decode(r.value) for r in read_topic(settings, topics.state_changelog)}
    assert {f"aml_kyc:acc-{i}".encode() for i in range(20)} <= set(states)
    worker.process.process.send_signal(signal.SIGKILL)
    worker.process.wait(10)

    worker = start_worker(settings, tmp_path / "worker-2.log")
    try:
        large = [event("aml_kyc", f"acc-{i}", 81 * DAY, amount=60_000.0, memo="年终奖") for i in range(20)]
        send(settings, large)
        # The events arrive while the new worker recovers the changelog: the stream buffers must
        # keep what is fetched between recovery's seek and the flow's resume (faust_seam).
        worker.wait_for("bankguard_events", lambda t: t.get("aml_kyc", 0) >= len(large))
        alerts = [orjson.loads(r.value) for r in read_topic(settings, topics.alerts, expected=len(large))]
        scored = worker.totals("bankguard_events").get("aml_kyc", 0)
    finally:
        worker.process.stop()
    # The new events may be delivered twice (the killed member leaves the group by timeout,
    # and that rebalance rewinds to the last commit), the committed history never.
    assert len(large) <= scored < len(history), "the committed history was consumed again"
    # 4 salaries of 10,000 each came back from the changelog: 60,000 is 6x their mean.
    assert len(alerts) == len(large)
    assert {(a["evidence"]["history_count"], a["evidence"]["history_mean"]) for a in alerts} == {(4, 10_000.0)}


def test_rules_update_changes_decisions_without_restart_and_bad_ones_are_rejected(settings, worker, tmp_path):
    env = settings_env(settings)
    lower = tmp_path / "lower.yaml"
    default = yaml.safe_load(DEFAULT_RULES.read_text(encoding="utf-8"))
    default["version"] = "lower-threshold"
    default["large_amount"]["amount_threshold"] = 20_000
    lower.write_text(yaml.safe_dump(default, allow_unicode=True), encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text('version: "broken"\nlarge_amount: {amount_threshold: -5}\n')

    first = [event("aml_kyc", "acc-x", 0 * DAY, amount=30_000.0, memo="转账")]
    send(settings, first)
    assert worker_alerts(settings, worker) == []  # below the default 50,000

    published = subprocess.run([sys.executable, "-m", "bankguard", "rules", "publish", str(lower)],
                               env=env, capture_output=True, text=True, timeout=60)
    assert published.returncode == 0, published.stderr
    wait_until(lambda: "lower-threshold" in _rules_version(worker), "the published rules active",
               check=worker.assert_alive)
    second = [event("aml_kyc", "acc-y", 0 * DAY, amount=30_000.0, memo="转账")]
    send(settings, second)
    alerts = worker_alerts(settings, worker)
    assert summary(alerts) == {("acc-y", "large_amount", "high")}
    assert alerts[0]["rules_config_version"] == "lower-threshold"

    # The CLI refuses a bad file outright...
    refused = subprocess.run([sys.executable, "-m", "bankguard", "rules", "publish", str(bad)],
                             env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "amount_threshold" in refused.stderr and "Traceback" not in refused.stderr
    # ...and a worker rejects one that reaches the topic anyway, keeping its config.
    producer = Producer(producer_config(settings))
    control = Topics(settings.topics.prefix).rules_control  # signed: it reaches validation
    raw = bad.read_bytes()
    producer.produce(control, raw, b"active", headers=sign(signing_key(settings), control, raw))
    producer.flush(10)
    [letter] = read_topic(settings, Topics(settings.topics.prefix).dlq, expected=1)
    rejected = DeadLetter.from_headers(letter.headers)
    assert rejected.reason == "rules_config_invalid" and "amount_threshold" in rejected.detail
    assert letter.value == bad.read_bytes()
    assert "lower-threshold" in _rules_version(worker)
    third = [event("aml_kyc", "acc-z", 0 * DAY, amount=30_000.0, memo="转账")]
    send(settings, third)
    assert ("acc-z", "large_amount", "high") in summary(worker_alerts(settings, worker))


def _rules_version(worker: RunningWorker) -> str:
    with urllib.request.urlopen(worker.metrics_url, timeout=5) as response:
        text = response.read().decode()
    return next((line for line in text.splitlines() if line.startswith("bankguard_rules_config_info")), "")


STATEMENT = """txId,datetime,txAmount,txDirection,txSummary,txCounterparty
{rows}
"""


def test_statement_scan_and_stream_agree(settings, worker, tmp_path):
    lines = []
    for i in range(1, 121):  # four months of a salaried account, then some large movements
        lines.append(f"S{i},2026-0{1 + i // 31}-{1 + i % 28:02d} 10:{i % 60:02d}:00,"
                     f"{8_000 + (i % 7) * 500},收入,工资,上海某某科技有限公司")
    lines += [
        "L1,2026-05-02 09:00:00,60000,支出,购房款,房产公司",
        "L2,2026-05-03 09:00:00,90000,支出,,张三",
        "L3,2026-05-04 09:00:00,52000,支出,赌资,李四",
        "L4,2026-05-05 09:00:00,250000,支出,转账,王五",
        "L5,2026-05-05 09:00:00,48000,收入,转账,赵六",
        "L6,2026-05-05 11:00:00,49000,收入,转账,赵六",
        "L7,2026-05-05 13:00:00,47000,收入,转账,赵六",
        "BAD,not a date,1,支出,x,y",
    ]
    path = tmp_path / "ACC-900.csv"
    path.write_text(STATEMENT.format(rows="\n".join(lines)), encoding="utf-8")
    scan = subprocess.run([sys.executable, "-m", "bankguard", "statements", "scan", str(path), "--json"],
                          env=settings_env(settings), capture_output=True, text=True, timeout=60)
    assert scan.returncode == 0, scan.stderr
    result = orjson.loads(scan.stdout)
    scanned = {(f"stmt-ACC-900-{a['tx_id']}", a["rule"], a["severity"]) for a in result["anomalies"]}
    assert {a["tx_id"] for a in result["anomalies"]} >= {"L2", "L3", "L4", "L7"}
    assert [r["line"] for r in result["rejected"]] == [len(lines) + 1]

    ingest = subprocess.run([sys.executable, "-m", "bankguard", "ingest", "statements", str(path)],
                            env=settings_env(settings), capture_output=True, text=True, timeout=60)
    assert ingest.returncode == 0, ingest.stderr
    streamed = {(a["event_id"], a["detector"]["id"], a["severity"]) for a in worker_alerts(settings, worker)}
    assert streamed == scanned
