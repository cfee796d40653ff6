"""Features maintained event by event: the stream worker's per-entity state.

State per entity is a handful of bucket totals per feature plus a small "last seen"
map, so a 90-day baseline costs 91 numbers, not 90 days of events. Events that share
the latest timestamp are held back ("pending") until time moves on, so an event never
counts another event with its own timestamp: windows end strictly before ``t``.
Events older than the entity's latest are folded in at once (late data sees the
newer history; the batch path, which sorts by time, would not).
"""

from __future__ import annotations

import math
from typing import Any

from bankguard.features.spec import Feature, SinceLast, Tenure, WindowFeature

Contribution = tuple[str, Any, float | None]  # (feature, bucket index or seen value, amount)


class EntityState:
    """The running state of one entity; ``to_json``/``from_json`` for the changelog."""

    __slots__ = ("buckets", "seen", "latest_t", "pending", "offset", "first_t", "extras")

    def __init__(self) -> None:
        self.buckets: dict[str, dict[int, float]] = {}
        self.seen: dict[str, dict[Any, int]] = {}
        self.latest_t: int | None = None  # time of the held-back (pending) events
        self.pending: list[Contribution] = []
        self.offset: int | None = None  # input offset of the last event applied (replay guard)
        self.first_t: int | None = None  # time of the entity's first event
        self.extras: dict[str, Any] = {}  # JSON state of other consumers (the models' sequence)

    # -- the stream's one call per event ------------------------------------------
    def observe(self, features: tuple[Feature, ...], event: dict[str, Any], t_ms: int) -> dict[str, float]:
        """Feature values of ``event`` from the entity's earlier events, then record it."""
        latest = self.latest_t
        if latest is not None and t_ms != latest and self.pending:
            self._apply(features, self.pending, latest)
            self.pending = []
        values = self._read(features, event, t_ms)
        self.first_t = t_ms if self.first_t is None else min(self.first_t, t_ms)
        contributions = _contributions(features, event, t_ms)
        if latest is not None and t_ms < latest:
            self._apply(features, contributions, t_ms)  # late event: fold in at once
        else:
            self.pending.extend(contributions)
            self.latest_t = t_ms
        return values

    def _read(self, features: tuple[Feature, ...], event: dict[str, Any], t_ms: int) -> dict[str, float]:
        values: dict[str, float] = {}
        for feature in features:
            if isinstance(feature, WindowFeature):
                buckets = self.buckets.get(feature.name)
                if not buckets:
                    values[feature.name] = 0.0
                    continue
                first = t_ms // feature.bucket_ms - (feature.buckets - 1)
                # Usually every bucket is live (expired ones go when a new one opens): then
                # C-level min/sum/max replace a filtering comprehension, same order, same sums.
                live = buckets.values() if min(buckets) >= first else [v for idx, v in buckets.items() if idx >= first]
                if feature.agg == "max":
                    values[feature.name] = max(live, default=0.0)
                else:
                    values[feature.name] = float(sum(live))
            elif isinstance(feature, Tenure):
                first = self.first_t
                values[feature.name] = float(t_ms - first) if first is not None and first < t_ms else 0.0
            else:
                key = event.get(feature.field)
                last = self.seen.get(feature.name, {}).get(key) if key is not None else None
                since = math.inf if last is None else float(t_ms - last)
                values[feature.name] = since if since <= feature.horizon_ms else math.inf
        return values

    def _apply(self, features: tuple[Feature, ...], contributions: list[Contribution], t_ms: int) -> None:
        specs = _plan(features)[2]
        for name, key, amount in contributions:
            feature = specs.get(name)
            if isinstance(feature, WindowFeature):
                buckets = self.buckets.setdefault(name, {})
                current = buckets.get(key)
                if current is None:  # a new bucket: older ones may have left the window
                    first = key - (feature.buckets - 1)
                    for idx in [idx for idx in buckets if idx < first]:
                        del buckets[idx]
                    buckets[key] = amount
                elif feature.agg == "max":
                    buckets[key] = max(current, amount)
                else:
                    buckets[key] = current + amount
            elif isinstance(feature, SinceLast):
                seen = self.seen.setdefault(name, {})
                last = seen.pop(key, t_ms)
                seen[key] = max(last, t_ms)  # a late event does not make a value look older
                horizon_start = t_ms - feature.horizon_ms
                while seen and next(iter(seen.values())) < horizon_start:
                    del seen[next(iter(seen))]

    # -- changelog ------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "b": {name: [[idx, v] for idx, v in b.items()] for name, b in self.buckets.items() if b},
            "s": {name: [[k, t] for k, t in s.items()] for name, s in self.seen.items() if s},
            "t": self.latest_t,
            "p": [list(c) for c in self.pending],
            "o": self.offset,
            "f": self.first_t,
            "x": self.extras,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EntityState:
        state = cls()
        state.buckets = {name: {int(idx): v for idx, v in pairs} for name, pairs in data.get("b", {}).items()}
        state.seen = {name: {k: int(t) for k, t in pairs} for name, pairs in data.get("s", {}).items()}
        state.latest_t = data.get("t")
        state.pending = [tuple(c) for c in data.get("p", [])]
        state.offset = data.get("o")
        state.first_t = data.get("f")
        state.extras = data.get("x", {})
        return state


def _contributions(features: tuple[Feature, ...], event: dict[str, Any], t_ms: int) -> list[Contribution]:
    """What the event adds to each feature; features that count the same thing (same
    conditions, value and aggregate, other windows) share one evaluation."""
    out: list[Contribution] = []
    windows, since_last, _ = _plan(features)
    for representative, members in windows:
        amount = representative.contribution(event)
        if amount is not None:
            out += [(name, t_ms // bucket_ms, amount) for name, bucket_ms in members]
    for feature in since_last:
        key = event.get(feature.field)
        if key is not None:
            out.append((feature.name, key, None))
    return out


# (window features grouped by what they count, since-last features, features by name)
Plan = tuple[list[tuple[WindowFeature, list[tuple[str, int]]]], list[SinceLast], dict[str, Feature]]
_plans: dict[int, tuple[tuple[Feature, ...], Plan]] = {}


def _plan(features: tuple[Feature, ...]) -> Plan:
    """The grouping of a feature tuple, cached by identity (hashing the tuple per event
    would cost more than the grouping saves)."""
    cached = _plans.get(id(features))
    if cached is not None and cached[0] is features:
        return cached[1]
    if len(_plans) > 64:
        _plans.clear()
    plan = _group(features)
    _plans[id(features)] = (features, plan)
    return plan


def _group(features: tuple[Feature, ...]) -> Plan:
    groups: dict[tuple, tuple[WindowFeature, list[tuple[str, int]]]] = {}
    for feature in features:
        if isinstance(feature, WindowFeature):
            key = (feature.where, feature.value, feature.agg == "sumsq")
            groups.setdefault(key, (feature, []))[1].append((feature.name, feature.bucket_ms))
    return (list(groups.values()), [f for f in features if isinstance(f, SinceLast)],
            {feature.name: feature for feature in features})
