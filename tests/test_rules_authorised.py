"""Who may change the rules, through the real broker and a real worker: only signed
configurations that leave no scenario silent are activated, and each activation is
recorded on the audit topic."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from datetime import UTC, datetime, timedelta

import orjson
import yaml
from confluent_kafka import Producer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bankguard.kafka import producer_config
from bankguard.rules import RULES
from bankguard.rules.audit import digest
from bankguard.rules.config import DEFAULT_CONFIG_PATH
from bankguard.rules.signing import key_id, sign, signing_key
from bankguard.settings import settings_env
from bankguard.stream_agents.dead_letters import DeadLetter
from bankguard.topics import Topics
from conftest import start_worker
from kafka_helpers import read_topic, wait_until
from scoring_helpers import event, send, worker_alerts

DEFAULT = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))


def document(version: str, **changes: object) -> bytes:
    return yaml.safe_dump({**DEFAULT, "version": version, **changes}, allow_unicode=True).encode()


ALL_OFF = document("all-off", disabled_rules=sorted(RULES), keywords={"enabled": False},
                   large_amount={**DEFAULT["large_amount"], "enabled": False})


def pep_transfer(entity: str) -> dict:
    """The measured blind spot: 900,000 from a PEP to a high-risk country, a gambling memo."""
    return event("aml_kyc", entity, timedelta(0), amount=900_000.0, memo="赌博", pep=True,
                 destination_country="KP")


def rules_version(worker) -> str:
    with urllib.request.urlopen(worker.metrics_url, timeout=5) as response:
        text = response.read().decode()
    return next(line for line in text.splitlines() if line.startswith("bankguard_rules_config_info"))


def test_unsigned_forged_and_silencing_configurations_are_refused_and_a_signed_one_is_audited(
        settings, worker, tmp_path):
    topics = Topics(settings.topics.prefix)
    control = topics.rules_control
    trusted = signing_key(settings)  # the run dir's local pair, which the worker trusts
    stranger = Ed25519PrivateKey.generate()
    producer = Producer(producer_config(settings))
    producer.produce(control, ALL_OFF, b"active")  # unsigned
    producer.produce(control, ALL_OFF, b"active", headers=sign(stranger, control, ALL_OFF))
    producer.produce(control, ALL_OFF, b"active", headers=sign(trusted, control, ALL_OFF))  # no override
    assert producer.flush(15) == 0

    letters = read_topic(settings, topics.dlq, expected=3, timeout_s=60)
    refused = [DeadLetter.from_headers(letter.headers) for letter in letters]
    assert [r.reason for r in refused] == ["rules_config_unsigned", "rules_signature_invalid", "rules_config_silent"]
    assert all(letter.value == ALL_OFF for letter in letters), "the DLQ keeps the original bytes"
    assert [r.offset for r in refused] == [0, 1, 2] and {r.topic for r in refused} == {control}
    assert "allow_silent_scenarios" in refused[2].detail
    assert f'version="{DEFAULT["version"]}"' in rules_version(worker)

    # The worker still alerts with the packaged rules.
    blind_spot = [pep_transfer("acc-pep-1")]
    send(settings, blind_spot)
    detectors = {a["detector"]["id"] for a in worker_alerts(settings, worker)}
    assert {"large_amount", "keywords", "aml_kyc.pep_high_risk_corridor"} <= detectors

    # A signed, complete configuration is accepted, and its activation audited.
    lower = tmp_path / "lower.yaml"
    lower.write_bytes(document("lower-threshold", large_amount={**DEFAULT["large_amount"], "amount_threshold": 20_000}))
    published = subprocess.run([sys.executable, "-m", "bankguard", "rules", "publish", str(lower)],
                               env=settings_env(settings), capture_output=True, text=True, timeout=60)
    assert published.returncode == 0, published.stderr
    kid = key_id(trusted.public_key())
    assert kid in published.stderr
    [audit] = read_topic(settings, topics.rules_audit, expected=1, timeout_s=60)
    record = orjson.loads(audit.value)
    assert audit.key == b"lower-threshold"
    assert (record["version"], record["previous_version"]) == ("lower-threshold", DEFAULT["version"])
    assert record["signer"] == {"key_id": kid, "name": "local"}
    assert record["sha256"] == digest(lower.read_bytes())
    assert record["source"] == {"topic": control, "partition": 0, "offset": 3}
    assert record["diff"] == [{"path": "large_amount.amount_threshold", "old": 50_000.0, "new": 20_000.0},
                              {"path": "version", "old": DEFAULT["version"], "new": "lower-threshold"}]
    wait_until(lambda: 'version="lower-threshold"' in rules_version(worker), "the audited configuration active",
               check=worker.assert_alive)
    mid = [event("aml_kyc", "acc-mid", timedelta(0), amount=30_000.0, memo="转账")]
    send(settings, mid)
    fired = [a for a in worker_alerts(settings, worker) if a["entity_id"] == "acc-mid"]
    assert {(a["detector"]["id"], a["rules_config_version"]) for a in fired} == {("large_amount", "lower-threshold")}

    # An older signed configuration replayed onto the topic does not roll the rules back.
    earlier = datetime.now(UTC) - timedelta(hours=1)
    old = document("older")
    producer.produce(control, old, b"active", headers=sign(trusted, control, old, now=earlier))
    assert producer.flush(15) == 0
    letters = read_topic(settings, topics.dlq, expected=4, timeout_s=60)
    assert DeadLetter.from_headers(letters[3].headers).reason == "rules_config_stale"
    assert 'version="lower-threshold"' in rules_version(worker)
    # The watcher handles one control record at a time, each audit or dead letter acknowledged
    # before the next: with the stale one's letter read, any audit of it would be there too.
    assert len(read_topic(settings, topics.rules_audit)) == 1, "refusals are not audited as changes"


def test_a_restarted_worker_audits_the_configuration_it_resumes_with_once(settings, tmp_path):
    """On start a worker reads the control topic's whole history (the embedded broker never
    compacts it); it records the one activation that history amounts to, not each step."""
    topics = Topics(settings.topics.prefix)
    key = signing_key(settings)
    producer = Producer(producer_config(settings))
    for index, threshold in enumerate((40_000, 30_000)):
        value = document(f"step-{index}", large_amount={**DEFAULT["large_amount"], "amount_threshold": threshold})
        producer.produce(topics.rules_control, value, b"active", headers=sign(key, topics.rules_control, value))
        assert producer.flush(15) == 0
    worker = start_worker(settings, tmp_path / "worker.log")
    try:
        assert 'version="step-1"' in rules_version(worker)
        [audit] = read_topic(settings, topics.rules_audit)  # audited before the worker serves
    finally:
        worker.process.stop()
    record = orjson.loads(audit.value)
    assert (record["version"], record["previous_version"]) == ("step-1", DEFAULT["version"])
    assert record["source"]["offset"] == 1
    assert {"path": "large_amount.amount_threshold", "old": 50_000.0, "new": 30_000.0} in record["diff"]
