"""The audit trail of rules changes: one record per activation, on ``<prefix>.audit.rules``.

A worker writes the record when it switches to a configuration from the control topic,
before it scores with it: which version replaced which, who signed it and when, what
changed (field by field), and where the record came from. Records are keyed by version;
with several workers, each records its own activation (``worker`` says which).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from bankguard.rules.config import RulesConfig
from bankguard.rules.signing import Signed

SCHEMA_VERSION = 1


def flatten(node: Any, path: str = "") -> dict[str, Any]:
    """Leaves of a config by dotted path; lists are leaves (a keyword list changes as a whole),
    except lists of mappings, which are indexed (``large_amount.tiers.0.threshold``)."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out |= flatten(value, f"{path}.{key}" if path else str(key))
        return out
    if isinstance(node, (list, tuple)) and node and all(isinstance(item, dict) for item in node):
        out = {}
        for index, value in enumerate(node):
            out |= flatten(value, f"{path}.{index}")
        return out
    return {path: list(node) if isinstance(node, tuple) else node}


def config_diff(old: RulesConfig, new: RulesConfig) -> list[dict[str, Any]]:
    """Every path whose value differs, with both values (``None`` where a path is absent)."""
    before, after = flatten(old.model_dump(mode="json")), flatten(new.model_dump(mode="json"))
    return [{"path": path, "old": before.get(path), "new": after.get(path)}
            for path in sorted(before.keys() | after.keys()) if before.get(path) != after.get(path)]


def digest(value: bytes) -> str:
    return hashlib.sha256(value).hexdigest()


def audit_record(*, previous: RulesConfig, config: RulesConfig, raw: bytes, signed: Signed, worker: str,
                 topic: str, partition: int, offset: int, now: datetime | None = None) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "event": "rules_config_activated",
        "version": config.version,
        "previous_version": previous.version,
        "sha256": digest(raw),
        "signer": {"key_id": signed.key_id, "name": signed.signer},
        "signed_at": _iso(signed.signed_at),
        "activated_at": _iso(now or datetime.now(UTC)),
        "worker": worker,
        "source": {"topic": topic, "partition": partition, "offset": offset},
        "diff": config_diff(previous, config),
    }


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
