"""Dead-letter records: the original key and bytes, with why and where in headers.

This follows the Kafka Connect convention (``errors.deadletterqueue.context.headers``):
a consumer can replay the value as it was, and read the reason without parsing it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

HEADER_PREFIX = "bankguard.dlq."
KEPT_BYTES = 64 * 1024  # what the DLQ keeps of a record too large to deliver whole


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


def truncated_copy(key: bytes | None, value: bytes, headers: dict[str, bytes]) -> tuple[bytes | None, bytes,
                                                                                       dict[str, bytes]]:
    """A record too large to deliver, cut to what the DLQ keeps: the first
    :data:`KEPT_BYTES` of key and value, with the original size and SHA-256 of the value in
    headers so the copy can be matched to its source."""
    size = len(value) + len(key or b"")
    return (key[:1024] if key else key), value[:KEPT_BYTES], headers | {
        HEADER_PREFIX + "truncated": b"true",
        HEADER_PREFIX + "original_size": str(size).encode(),
        HEADER_PREFIX + "sha256": hashlib.sha256(value).hexdigest().encode(),
    }
