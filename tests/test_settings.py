"""Settings handed to a child process (worker, CLI) arrive whole."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from bankguard.settings import KafkaSettings, ModelSettings, Settings, WorkerSettings, settings_env


def test_a_child_process_reads_back_every_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    parent = Settings(
        kafka=KafkaSettings(bootstrap_servers="kafka-1:9093,kafka-2:9093", security_protocol="SASL_SSL",
                            sasl_mechanism="SCRAM-SHA-512", sasl_username="svc",
                            sasl_password=SecretStr("s3cret"), ssl_cafile=Path("/etc/ca.pem")),
        worker=WorkerSettings(web_port=7001, max_poll_records=None, commit_interval_s=1.5),
        models=ModelSettings(shadows=False, dir=Path("artifacts-v2"), forecast_interval_s=30.0),
    )
    # This process's own variables must not leak into the child's settings.
    monkeypatch.setenv("BANKGUARD_WORKER__MAX_POLL_RECORDS", "50")
    monkeypatch.setenv("BANKGUARD_MODELS__SHADOWS", "true")
    env = settings_env(parent)
    for name in [name for name in os.environ if name.startswith("BANKGUARD_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    child = Settings()
    assert child.model_dump() == parent.model_dump()
    assert child.kafka.sasl_password.get_secret_value() == "s3cret"
    assert child.models.shadows is False and child.worker.max_poll_records is None
