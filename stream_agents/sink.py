"""Everything a batch writes (alerts, dead letters, state), through one librdkafka producer.

``flush`` waits until the broker acknowledged every record of the batch; the agent
calls it before handing the batch back to Faust, so input offsets are committed only
after the alerts they caused are durable (at-least-once, never at-most-once).
"""

from __future__ import annotations

from confluent_kafka import KafkaError, Message, Producer

from bankguard.kafka import produce, producer_config
from bankguard.settings import Settings


class DeliveryFailed(RuntimeError):
    """The broker did not acknowledge a record; the batch must not be committed."""


class BatchSink:
    def __init__(self, settings: Settings) -> None:
        self._errors: list[str] = []
        self.producer = Producer(producer_config(settings, **{"linger.ms": 2}) | {"on_delivery": self._delivered})

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._errors.append(f"{msg.topic()}: {err.str()}")

    def send(self, topic: str, key: bytes | None, value: bytes, *, partition: int | None = None,
             headers: dict[str, bytes] | None = None) -> None:
        produce(self.producer, topic, value, key, partition=partition, headers=headers)

    def flush(self, timeout_s: float = 30.0) -> None:
        """Block until every record sent so far is acknowledged, or raise."""
        if self.producer.flush(timeout_s):
            raise DeliveryFailed(f"{len(self.producer)} record(s) unacknowledged after {timeout_s:g} s")
        if self._errors:
            errors, self._errors = self._errors, []
            raise DeliveryFailed("; ".join(errors[:3]))
