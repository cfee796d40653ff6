"""Live rules configuration from the compacted control topic, without a restart.

Every worker reads the whole single-partition control topic itself (no consumer
group: each worker needs every update, not a share of them). A record that fails
validation is rejected with its reason, and the running configuration stays.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from bankguard.errors import BankguardError
from bankguard.kafka import client_config
from bankguard.rules.config import RulesConfig, parse_rules
from bankguard.settings import Settings
from bankguard.topic_range import next_offset

log = logging.getLogger(__name__)


class RulesWatcher:
    """Holds the active config; a background thread applies updates as they arrive."""

    def __init__(self, settings: Settings, topic: str, initial: RulesConfig, *,
                 on_change: Callable[[RulesConfig], None] = lambda config: None,
                 on_reject: Callable[[bytes, str], None] = lambda raw, reason: None) -> None:
        self.topic = topic
        self._config = initial
        self.on_change = on_change
        self.on_reject = on_reject
        self._stop = threading.Event()
        self._caught_up = threading.Event()
        self._consumer = Consumer(client_config(settings.kafka) | {
            "group.id": f"{settings.topics.prefix}-rules-watcher",  # required; never joins
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 50,
            "log_level": 3,
        })
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

    def apply(self, raw: bytes) -> bool:
        """Validate and activate one published document; False (and the reason reported) if bad."""
        try:
            config = parse_rules(raw, source="rules update")
        except BankguardError as exc:
            log.error("rejected %s", exc)
            self.on_reject(raw, str(exc))
            return False
        if config != self._config:
            self._config = config
            log.warning("rules configuration %s active", config.version)
            self.on_change(config)
        return True

    def _run(self) -> None:
        try:
            partition = TopicPartition(self.topic, 0, OFFSET_BEGINNING)
            self._consumer.assign([partition])
            _, high = self._consumer.get_watermark_offsets(TopicPartition(self.topic, 0), timeout=10)
            if high == 0:
                self._caught_up.set()
            while not self._stop.is_set():
                message = self._consumer.poll(0.2)
                if message is None or message.error():
                    continue
                value = message.value()
                if value is not None:
                    self.apply(value)
                if next_offset(message) >= high:
                    self._caught_up.set()
        except KafkaException as exc:
            log.error("rules watcher stopped: %s", exc)
        finally:
            self._consumer.close()
