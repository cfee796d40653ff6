"""Live rules configuration from the compacted control topic, without a restart.

Every worker reads the whole single-partition control topic itself (no consumer
group: each worker needs every update, not a share of them). A record is activated only
when a trusted key signed it (``bankguard.rules.signing``), it validates, it leaves no
scenario silent unless it says so (``bankguard.rules.coverage``), it is newer than the
running one, and its audit record (``bankguard.rules.audit``) is acknowledged. Anything
else goes to the dead-letter topic with its reason and original bytes, and the running
configuration stays.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from typing import Any, cast
from datetime import datetime

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from bankguard.errors import BankguardError
from bankguard.kafka import client_config, producer_config
from bankguard.rules.audit import audit_record
from bankguard.rules.config import RulesConfig, parse_rules
from bankguard.rules.coverage import SilentScenarios, require_coverage
from bankguard.rules.signing import Signed, SignatureRefused, TrustedKeys, trusted_keys
from bankguard.settings import Settings
from bankguard.stream_agents.dead_letters import DeadLetter
from bankguard.topic_range import next_offset
from bankguard.topics import Topics

log = logging.getLogger(__name__)

AUDIT_RETRY_S = 10.0


class Refused(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class RulesWatcher:
    """Holds the active config; a background thread applies updates as they arrive."""

    def __init__(self, settings: Settings, topic: str, initial: RulesConfig, *,
                 on_change: Callable[[RulesConfig], None] = lambda config: None,
                 on_reject: Callable[[str], None] = lambda reason: None) -> None:
        require_coverage(initial, source="starting rules")  # trusted as code, still not silent by accident
        self.topic = topic
        self._config = initial
        self._signed_at: datetime | None = None  # of the active config; the packaged one is unsigned
        self._catching_up = True  # reading the topic's history before the worker starts
        self._pending_audit: tuple[RulesConfig, bytes, Signed, int] | None = None
        self.on_change = on_change
        self.on_reject = on_reject
        self._trusted: TrustedKeys = trusted_keys(settings)
        self._topics = Topics(settings.topics.prefix)
        self._worker = f"{socket.gethostname()}:{settings.worker.web_port}"
        self._stop = threading.Event()
        self._caught_up = threading.Event()
        self._consumer = Consumer(client_config(settings.kafka) | {
            "group.id": f"{settings.topics.prefix}-rules-watcher",  # required; never joins
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 50,
            "log_level": 3,
        })
        self._producer = Producer(producer_config(settings))  # dead letters and audit records
        self._thread = threading.Thread(target=self._run, name="rules-watcher", daemon=True)

    @property
    def config(self) -> RulesConfig:
        return self._config

    def start(self, catch_up_timeout_s: float = 15.0) -> RulesWatcher:
        """Start and wait until the topic has been read to its end once."""
        self._thread.start()
        if not self._caught_up.wait(catch_up_timeout_s):
            raise BankguardError(f"could not read the rules control topic {self.topic} "
                                 f"within {catch_up_timeout_s:.0f} s")
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def apply(self, raw: bytes, headers: dict[str, bytes], *, partition: int = 0, offset: int = -1,
              timestamp_ms: int | None = None) -> bool:
        """Check and activate one control record; False (dead-lettered with its reason) if refused."""
        try:
            signed, config = self._accept(raw, headers)
        except Refused as exc:
            log.error("rules update refused (%s): %s", exc.reason, exc)
            self._dead_letter(raw, exc.reason, str(exc), partition, offset, timestamp_ms)
            self.on_reject(exc.reason)
            return False
        if config != self._config:
            if self._catching_up:  # nothing is scored yet: audit only where the history ends
                previous = self._pending_audit[0] if self._pending_audit else self._config
                self._pending_audit = (previous, raw, signed, offset)
            else:
                self._audit(self._config, config, raw, signed, partition, offset)
            self._config, self._signed_at = config, signed.signed_at
            log.warning("rules configuration %s active (signed by %s, key %s)",
                        config.version, signed.signer, signed.key_id)
            self.on_change(config)
        return True

    def _audit(self, previous: RulesConfig, config: RulesConfig, raw: bytes, signed: Signed, partition: int,
               offset: int) -> None:
        record = audit_record(previous=previous, config=config, raw=raw, signed=signed, worker=self._worker,
                              topic=self.topic, partition=partition, offset=offset)
        self._send_until_acknowledged(self._topics.rules_audit, config.version.encode(), orjson.dumps(record), None)

    def _caught_up_now(self) -> None:
        """The history is read: record the one activation it amounts to, then go live."""
        if self._pending_audit is not None:
            previous, raw, signed, offset = self._pending_audit
            if previous != self._config:
                self._audit(previous, self._config, raw, signed, 0, offset)
            self._pending_audit = None
        self._catching_up = False
        self._caught_up.set()

    def _accept(self, raw: bytes, headers: dict[str, bytes]) -> tuple[Signed, RulesConfig]:
        try:
            signed = self._trusted.verify(self.topic, raw, headers)
        except SignatureRefused as exc:
            raise Refused(exc.reason, str(exc)) from None
        try:
            config = parse_rules(raw, source="rules update")
            require_coverage(config, source="rules update")
        except SilentScenarios as exc:
            raise Refused("rules_config_silent", str(exc)) from None
        except BankguardError as exc:
            raise Refused("rules_config_invalid", str(exc)) from None
        if self._signed_at is not None and signed.signed_at < self._signed_at:
            raise Refused("rules_config_stale", f"signed at {signed.signed_at.isoformat()}, before the active "
                          f"configuration {self._config.version} ({self._signed_at.isoformat()})")
        if config.version == self._config.version and config != self._config:
            raise Refused("rules_version_reused", f"version {config.version} is active with other content; "
                          "a changed configuration needs a new version")
        return signed, config

    def _dead_letter(self, raw: bytes, reason: str, detail: str, partition: int, offset: int,
                     timestamp_ms: int | None) -> None:
        letter = DeadLetter(reason, detail, self.topic, partition, offset, timestamp_ms)
        self._send_until_acknowledged(self._topics.dlq, b"rules", raw, letter.headers())

    def _send_until_acknowledged(self, topic: str, key: bytes, value: bytes,
                                 headers: dict[str, bytes] | None) -> None:
        """Nothing about the rules is lost quietly: retry through a broker outage, saying so."""
        while True:
            failures: list[str] = []

            def delivered(err: KafkaError | None, _msg: Message, failures: list[str] = failures) -> None:
                if err is not None:
                    failures.append(str(err))

            self._producer.produce(topic, value, key, headers=cast(Any, headers), on_delivery=delivered)
            if not self._producer.flush(AUDIT_RETRY_S) and not failures:
                return
            if self._stop.is_set():
                log.error("stopping with an unacknowledged record for %s", topic)
                return
            log.error("record for %s not acknowledged (%s); retrying", topic,
                      failures[0] if failures else f"no answer in {AUDIT_RETRY_S:.0f} s")

    def _run(self) -> None:
        try:
            partition = TopicPartition(self.topic, 0, OFFSET_BEGINNING)
            self._consumer.assign([partition])
            _, high = self._consumer.get_watermark_offsets(TopicPartition(self.topic, 0), timeout=10)
            if high == 0:
                self._caught_up_now()
            while not self._stop.is_set():
                message = self._consumer.poll(0.2)
                if message is None or message.error():
                    continue
                value = message.value()
                if value is not None:
                    _, timestamp = message.timestamp()
                    headers = dict(cast(list[tuple[str, bytes]], message.headers() or []))  # a list, from a consumer
                    self.apply(value, headers, partition=cast(int, message.partition()),
                               offset=cast(int, message.offset()), timestamp_ms=timestamp if timestamp > 0 else None)
                if self._catching_up and next_offset(message) >= high:
                    self._caught_up_now()
        except KafkaException as exc:
            log.error("rules watcher stopped: %s", exc)
        finally:
            self._consumer.close()
            self._producer.flush(5)
