"""Dead-letter records: the original key and bytes, with why and where in headers.

This follows the Kafka Connect convention (``errors.deadletterqueue.context.headers``):
a consumer can replay the value as it was, and read the reason without parsing it.
"""

from __future__ import annotations

from dataclasses import dataclass

HEADER_PREFIX = "bankguard.dlq."


@dataclass(frozen=True)
class DeadLetter:
    reason: str  # short label, also the metric label
    detail: str
    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None

    def headers(self) -> dict[str, bytes]:
        fields = {
            "reason": self.reason,
            "detail": self.detail[:1000],
            "topic": self.topic,
            "partition": str(self.partition),
            "offset": str(self.offset),
            "timestamp": "" if self.timestamp_ms is None else str(self.timestamp_ms),
        }
        return {HEADER_PREFIX + name: value.encode() for name, value in fields.items()}

    @classmethod
    def from_headers(cls, headers: list[tuple[str, bytes]] | dict[str, bytes]) -> DeadLetter:
        items = dict(headers.items() if isinstance(headers, dict) else headers)
        get = lambda name: items[HEADER_PREFIX + name].decode()  # noqa: E731
        timestamp = get("timestamp")
        return cls(get("reason"), get("detail"), get("topic"), int(get("partition")),
                   int(get("offset")), int(timestamp) if timestamp else None)
