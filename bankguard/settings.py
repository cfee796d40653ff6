"""All configuration in one place, read from the environment (prefix ``BANKGUARD_``).

Nested groups use ``__`` in variable names, e.g. ``BANKGUARD_KAFKA__BOOTSTRAP_SERVERS``
or ``BANKGUARD_WORKER__WEB_PORT``. The defaults run the embedded stack on loopback;
pointing ``kafka.bootstrap_servers`` (plus the SASL/TLS fields) at a real Apache Kafka
runs the same code in production.
"""

from __future__ import annotations

import os
import re

from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from bankguard.errors import UsageMistake


NULL = "null"  # an unset optional setting, in a variable


class KafkaSettings(BaseModel):
    """How every client (producers, workers, admin, replay) reaches the cluster."""

    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    session_timeout_s: float = Field(
        6.0, description="Consumer group session timeout; groups join after about half of it."
    )


class TopicSettings(BaseModel):
    """Topic names and sizes. Tests give each run its own prefix."""

    prefix: str = "bankguard"
    partitions: int = Field(6, ge=1, description="Partitions of every scenario topic.")
    replication_factor: int = Field(1, ge=1)


class BrokerSettings(BaseModel):
    """The embedded Tansu broker that ``bankguard broker`` and ``bankguard up`` start."""

    host: str = "127.0.0.1"
    port: int = Field(9092, ge=1, le=65535)
    startup_timeout_s: float = 15.0


class ProducerSettings(BaseModel):
    """Tuning of the confluent-kafka producers."""

    linger_ms: int = 20
    batch_size: int = 512 * 1024
    compression: Literal["none", "lz4", "zstd", "snappy", "gzip"] = "lz4"
    entities_per_scenario: int = Field(5_000, ge=10)
    events_per_entity_per_day: float = Field(
        1.3, gt=0, description="Live density: simulated events per entity and day of event time `bankguard up` "
        "produces (the shipped models were trained at 1.3); its clock runs as fast as that needs.")
    metrics_bind: str = Field("127.0.0.1", description="Address of the producer's /metrics (0.0.0.0 in containers).")


class WorkerSettings(BaseModel):
    """The Faust scoring worker."""

    web_port: int = Field(6066, ge=1, le=65535, description="Faust web server; serves /metrics.")
    web_bind: str = Field("127.0.0.1", description="Address of the web server (0.0.0.0 in containers).")
    fetch_max_wait_ms: int = Field(
        25, ge=1, description="Consumer fetch max wait: the longest an idle fetch is held (Faust "
        "hard-codes 1,500 ms; the embedded broker does not answer a held fetch when data arrives).",
    )
    max_poll_records: int | None = 2_000
    commit_interval_s: float = Field(2.8, gt=0, description="How often consumed offsets are committed.")
    data_dir: Path = Path(".bankguard/worker-data")
    case_window_hours: float = Field(24.0, gt=0, le=744, description="Event time one case groups an entity's "
                                     "alerts over (windows aligned to the Unix epoch: 24 h is a UTC day).")


class ModelSettings(BaseModel):
    """The pretrained models the worker scores with (see ``bankguard train``)."""

    enabled: bool = Field(True, description="Score with the champion and shadow models.")
    dir: Path | None = Field(None, description="Artifacts directory (default: the shipped models/artifacts).")
    shadows: bool = Field(True, description="Also score with the non-champion models (metrics only).")
    shadow_every: int = Field(4, ge=1, description="The shadows score one batch in this many per scenario "
                              "(1: every batch); the champion scores every one.")
    forecast_interval_s: float = Field(60.0, gt=0, description="Interval the risk forecast closes (a minute).")
    drift_window: int = Field(2_000, ge=10, description="Last champion scores per scenario whose drift from "
                              "the validation scores (PSI) is exported.")
    drift_min_scores: int = Field(500, ge=10, description="Champion scores a scenario needs before its drift is "
                                  "exported (fewer make a noisy PSI).")

    @model_validator(mode="after")
    def _drift_minimum_fits(self) -> ModelSettings:
        if self.drift_min_scores > self.drift_window:
            raise ValueError("drift_min_scores is above drift_window")
        return self


class RulesSettings(BaseModel):
    """Who may change the rules (``bankguard.rules.signing``). Neither set: a local key pair in
    ``<run_dir>/keys``, made on first use, for the embedded stack."""

    signing_key: Path | None = Field(None, description="Ed25519 private key (PEM) `rules publish` signs with.")
    trusted_keys: Path | None = Field(
        None, description="Public key (PEM), or a directory of *.pub keys, whose rules workers accept."
    )


class InvestigationSettings(BaseModel):
    """The investigations desk (``bankguard investigations``): how the bank's side confirms outcomes.

    Each day of event time, investigators work the ``capacity_per_day`` highest-risk alerted
    entities of every scenario and decide after an investigation delay; frauds they miss are
    reported by customers as chargebacks after a longer delay, or never."""

    capacity_per_day: int = Field(20, ge=0, description="Entities investigated per scenario per day (k).")
    below_line_sample_per_day: int = Field(
        10, ge=0, description="Alerted entities below the top k investigated per scenario per day, drawn at "
        "random: what makes precision over every alert measurable, not only over the riskiest.")
    delay_min_days: float = Field(1.0, ge=0, description="Shortest investigation, from the end of the day.")
    delay_max_days: float = Field(2.0, ge=0, description="Longest investigation, from the end of the day.")
    chargeback_share: float = Field(0.8, ge=0, le=1, description="Share of missed frauds customers report.")
    chargeback_min_days: float = Field(5.0, ge=0, description="Earliest chargeback, after the event.")
    chargeback_max_days: float = Field(30.0, ge=0, description="Latest chargeback, after the event.")
    seed: int = Field(0, description="Seed of the delays and of which frauds are reported.")
    lateness_s: float = Field(600.0, ge=0, description="Event time a day stays open for late alerts (stream).")

    @model_validator(mode="after")
    def _ordered_delays(self) -> InvestigationSettings:
        if self.delay_max_days < self.delay_min_days or self.chargeback_max_days < self.chargeback_min_days:
            raise ValueError("a delay's maximum is below its minimum")
        return self


class EvaluatorSettings(BaseModel):
    """The evaluator (``bankguard evaluate``): detection quality from alerts and confirmed outcomes."""

    window_days: int = Field(7, ge=1, description="Days of event time the figures cover.")
    precision_objective: float = Field(0.5, ge=0, le=1, description="Precision every detector is held to.")
    recall_objective: float = Field(0.6, ge=0, le=1, description="Recall a scenario's detectors are held to.")
    refresh_s: float = Field(5.0, gt=0, description="Seconds between two computations of the figures.")
    metrics_port: int = Field(8002, ge=0, le=65535, description="Port of the evaluator's /metrics.")
    metrics_bind: str = Field("127.0.0.1", description="Address of the evaluator's /metrics (0.0.0.0 in containers).")


class Settings(BaseSettings):
    """Root settings object; build it with :func:`get_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="BANKGUARD_", env_nested_delimiter="__", extra="ignore", env_parse_none_str=NULL
    )

    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    broker: BrokerSettings = BrokerSettings()
    producer: ProducerSettings = ProducerSettings()
    worker: WorkerSettings = WorkerSettings()
    models: ModelSettings = ModelSettings()
    rules: RulesSettings = RulesSettings()
    investigations: InvestigationSettings = InvestigationSettings()
    evaluator: EvaluatorSettings = EvaluatorSettings()
    run_dir: Path = Field(Path(".bankguard"), description="Logs, configs and summaries of `up`.")
    rules_path: Path | None = Field(
        None, description="Rules YAML used until one is published on the control topic (default: built-in)."
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment; a bad variable is one
    :class:`UsageMistake` naming it, not a validation dump."""
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        loc = [str(part) for part in first["loc"]]
        raise UsageMistake(f"invalid setting {_variable(loc)} ({'.'.join(loc)}): {first['msg']}") from None
    except SettingsError as exc:  # a nested group that is not JSON, e.g. BANKGUARD_KAFKA='{not json'
        field = re.search(r'field "([^"]+)"', str(exc))
        name = _variable([field.group(1)]) if field else "in the environment"
        cause = f": {exc.__cause__}" if exc.__cause__ is not None else ""
        raise UsageMistake(f"invalid setting {name}: does not parse (a group is JSON){cause}") from None


def _variable(loc: list[str]) -> str:
    """The environment variable of a settings field path, e.g. ``BANKGUARD_TOPICS__PARTITIONS``."""
    return "BANKGUARD_" + "__".join(part.upper() for part in loc)


def settings_env(settings: Settings) -> dict[str, str]:
    """Environment that makes a child process (CLI, worker) use exactly these settings.

    Every field is passed (an unset one as ``null``), so no setting silently falls back to
    its default, or to a variable inherited from this process, in the child."""
    return os.environ | dict(_env_items(settings, "BANKGUARD_")) | {"PYTHONUNBUFFERED": "1"}


def _env_items(group: BaseModel, prefix: str) -> Iterator[tuple[str, str]]:
    for field in type(group).model_fields:
        value, name = getattr(group, field), f"{prefix}{field.upper()}"
        if isinstance(value, BaseModel):
            yield from _env_items(value, f"{name}__")
        elif isinstance(value, SecretStr):
            yield name, value.get_secret_value()
        elif isinstance(value, bool):
            yield name, str(value).lower()
        else:
            yield name, NULL if value is None else str(value)
