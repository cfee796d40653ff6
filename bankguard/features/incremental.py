"""Features maintained event by event: the stream worker's per-entity state.

State per entity is a handful of bucket totals per *series* plus a small "last seen"
map, so a 90-day baseline costs 91 numbers, not 90 days of events. A series is what
window features share when they count the same thing at the same bucket size (a 7-,
30- and 90-day daily amount sum are one series, read over three spans): rules and models
add features without multiplying the state. Events that share the latest timestamp
are held back ("pending", folded per series) until time moves on, so an event never
counts another event with its own timestamp: windows end strictly before ``t``.
Events older than the entity's latest are folded in at once (late data sees the
newer history; the batch path, which sorts by time, would not).
"""

from __future__ import annotations

import hashlib
import math
from typing import Any, NamedTuple

import orjson
import ormsgpack

from bankguard.features.spec import Feature, SinceLast, Tenure, WindowFeature

STATE_VERSION = 2  # the changelog layout: buckets and pending amounts by series

_WINDOW, _TENURE, _SINCE = 0, 1, 2


class Series(NamedTuple):
    """One bucketed aggregate kept per entity: ``keep`` buckets of ``bucket_ms``."""

    bucket_ms: int
    keep: int
    is_max: bool


class Read(NamedTuple):
    """How one feature's value is read from the state (unpacked per event, so a tuple)."""

    kind: int  # _WINDOW, _TENURE or _SINCE
    key: str  # the series (window) or the since-last feature's name
    field: str  # the event field a since-last feature looks up
    bucket_ms: int
    span: int  # buckets read (window) or the horizon in ms (since-last)
    is_max: bool


class Group(NamedTuple):
    """Window features that count the same thing: one evaluation per event feeds every series."""

    representative: WindowFeature
    targets: tuple[tuple[str, bool], ...]  # (series key, is a maximum)


class Plan(NamedTuple):
    """How a feature tuple reads and updates the state, worked out once per tuple."""

    names: tuple[str, ...]
    reads: tuple[Read, ...]
    groups: tuple[Group, ...]
    series: dict[str, Series]
    since_last: tuple[SinceLast, ...]
    horizons: dict[str, int]  # since-last feature -> horizon


def series_key(feature: WindowFeature) -> str:
    """A short, stable name for what ``feature`` counts and at which bucket size (it is
    stored in every entity's state, so it must not depend on the feature's name)."""
    kind = {"count": "add", "sum": "add", "sumsq": "sq", "max": "max"}[feature.agg]
    digest = hashlib.blake2b(repr((feature.where, feature.value, kind)).encode(), digest_size=4).hexdigest()
    return f"{kind}{feature.bucket_ms // 1000}:{digest}"


class EntityState:
    """The running state of one entity; ``encode``/``decode`` for the changelog."""

    __slots__ = ("buckets", "seen", "latest_t", "pending", "pending_seen", "offset", "first_t", "extras")

    def __init__(self) -> None:
        self.buckets: dict[str, dict[int, float]] = {}  # series -> bucket index -> total
        self.seen: dict[str, dict[Any, int]] = {}  # since-last feature -> value -> last time
        self.latest_t: int | None = None  # time of the held-back (pending) events
        self.pending: dict[str, float] = {}  # series -> what the pending events add
        self.pending_seen: list[tuple[str, Any]] = []  # (since-last feature, value) of pending events
        self.offset: int | None = None  # input offset of the last event applied (replay guard)
        self.first_t: int | None = None  # time of the entity's first event
        self.extras: dict[str, Any] = {}  # other consumers' state: plain data, or objects with to_json()

    # -- the stream's one call per event ------------------------------------------
    def observe(self, features: tuple[Feature, ...], event: dict[str, Any], t_ms: int) -> dict[str, float]:
        """Feature values of ``event`` from the entity's earlier events, then record it."""
        plan = plan_of(features)
        return dict(zip(plan.names, self._observe(plan, event, t_ms), strict=True))

    def observe_row(self, features: tuple[Feature, ...], event: dict[str, Any], t_ms: int) -> list[float]:
        """:meth:`observe` as a list in the order of ``features`` (no dict per event)."""
        return self._observe(plan_of(features), event, t_ms)

    def _observe(self, plan: Plan, event: dict[str, Any], t_ms: int) -> list[float]:
        latest = self.latest_t
        if latest is not None and t_ms != latest and (self.pending or self.pending_seen):
            self._apply(plan, self.pending, self.pending_seen, latest)
            self.pending, self.pending_seen = {}, []
        values = self._read(plan, event, t_ms)
        self.first_t = t_ms if self.first_t is None or t_ms < self.first_t else self.first_t
        if latest is not None and t_ms < latest:  # late event: fold in at once
            pending: dict[str, float] = {}
            pending_seen: list[tuple[str, Any]] = []
            _contribute(plan, event, pending, pending_seen)
            self._apply(plan, pending, pending_seen, t_ms)
        else:
            _contribute(plan, event, self.pending, self.pending_seen)
            self.latest_t = t_ms
        return values

    def _read(self, plan: Plan, event: dict[str, Any], t_ms: int) -> list[float]:
        values: list[float] = []
        all_buckets = self.buckets
        for kind, key, field, bucket_ms, span, is_max in plan.reads:
            if kind == _WINDOW:
                buckets = all_buckets.get(key)
                if not buckets:
                    values.append(0.0)
                    continue
                first = t_ms // bucket_ms - (span - 1)
                # Usually every bucket is live: then C-level min/sum/max replace a filtering
                # comprehension (same order, same sums).
                live = buckets.values() if min(buckets) >= first else [v for idx, v in buckets.items() if idx >= first]
                values.append(max(live, default=0.0) if is_max else float(sum(live)))
            elif kind == _TENURE:
                first_t = self.first_t
                values.append(float(t_ms - first_t) if first_t is not None and first_t < t_ms else 0.0)
            else:
                value = event.get(field)
                last = self.seen.get(key, {}).get(value) if value is not None else None
                since = math.inf if last is None else float(t_ms - last)
                values.append(since if since <= span else math.inf)
        return values

    def _apply(self, plan: Plan, pending: dict[str, float], pending_seen: list[tuple[str, Any]], t_ms: int) -> None:
        for key, amount in pending.items():
            series = plan.series.get(key)
            if series is None:
                continue  # the features changed since: nothing reads this series any more
            idx = t_ms // series.bucket_ms
            buckets = self.buckets.get(key)
            if buckets is None:
                self.buckets[key] = {idx: amount}
                continue
            current = buckets.get(idx)
            if current is None:  # a new bucket: older ones may have left the window
                first = idx - (series.keep - 1)
                if min(buckets) < first:  # C-level check first: usually none have
                    for old in [old for old in buckets if old < first]:
                        del buckets[old]
                buckets[idx] = amount
            elif series.is_max:
                buckets[idx] = max(current, amount)
            else:
                buckets[idx] = current + amount
        for name, value in pending_seen:
            horizon = plan.horizons.get(name)
            if horizon is None:
                continue
            seen = self.seen.setdefault(name, {})
            last = seen.pop(value, t_ms)
            seen[value] = max(last, t_ms)  # a late event does not make a value look older
            horizon_start = t_ms - horizon
            while seen and next(iter(seen.values())) < horizon_start:
                del seen[next(iter(seen))]

    # -- changelog ------------------------------------------------------------------
    def encode(self) -> bytes:
        """The state as MessagePack bytes. The live dicts go in by reference: bucket indexes
        and seen values keep their types (ints, numbers, strings) with no conversion."""
        return ormsgpack.packb({
            "v": STATE_VERSION,
            "b": self.buckets,
            "s": self.seen,
            "t": self.latest_t,
            "p": self.pending,
            "q": self.pending_seen,
            "o": self.offset,
            "f": self.first_t,
            "x": {name: extra.to_json() if hasattr(extra, "to_json") else extra for name, extra in self.extras.items()},
        }, option=ormsgpack.OPT_NON_STR_KEYS)

    @classmethod
    def decode(cls, data: bytes) -> EntityState:
        """The state :meth:`encode` wrote. A JSON state of the first layout (kept by feature,
        not by series) keeps its replay guard and tenure; its windows start over."""
        state = cls()
        if data[:1] == b"{":
            legacy = orjson.loads(data)
            state.offset, state.first_t = legacy.get("o"), legacy.get("f")
            return state
        fields = ormsgpack.unpackb(data, option=ormsgpack.OPT_NON_STR_KEYS)
        state.buckets = fields["b"]
        state.seen = fields["s"]
        state.latest_t = fields["t"]
        state.pending = fields["p"]
        state.pending_seen = [(name, value) for name, value in fields["q"]]
        state.offset = fields["o"]
        state.first_t = fields["f"]
        state.extras = fields["x"]
        return state


def _contribute(plan: Plan, event: dict[str, Any], pending: dict[str, float],
                pending_seen: list[tuple[str, Any]]) -> None:
    """Fold what ``event`` adds into the pending amounts: one evaluation per thing counted,
    one amount per series."""
    for representative, targets in plan.groups:
        amount = representative.contribution(event)
        if amount is None:
            continue
        for key, is_max in targets:
            current = pending.get(key)
            if current is None:
                pending[key] = amount
            elif is_max:
                pending[key] = max(current, amount)
            else:
                pending[key] = current + amount
    for feature in plan.since_last:
        value = event.get(feature.field)
        if value is not None:
            pending_seen.append((feature.name, value))


_plans: dict[int, tuple[tuple[Feature, ...], Plan]] = {}


def plan_of(features: tuple[Feature, ...]) -> Plan:
    """The plan of a feature tuple, cached by identity (hashing the tuple per event would
    cost more than the plan saves)."""
    cached = _plans.get(id(features))
    if cached is not None and cached[0] is features:
        return cached[1]
    if len(_plans) > 64:
        _plans.clear()
    plan = _make_plan(features)
    _plans[id(features)] = (features, plan)
    return plan


def _make_plan(features: tuple[Feature, ...]) -> Plan:
    reads: list[Read] = []
    groups: dict[tuple[object, ...], tuple[WindowFeature, dict[str, bool]]] = {}
    series: dict[str, Series] = {}
    for feature in features:
        if isinstance(feature, WindowFeature):
            key = series_key(feature)
            is_max = feature.agg == "max"
            known = series.get(key)
            series[key] = Series(feature.bucket_ms, max(feature.buckets, known.keep if known else 0), is_max)
            group = groups.setdefault((feature.where, feature.value, feature.agg == "sumsq"), (feature, {}))
            group[1][key] = is_max
            reads.append(Read(_WINDOW, key, "", feature.bucket_ms, feature.buckets, is_max))
        elif isinstance(feature, Tenure):
            reads.append(Read(_TENURE, "", "", 0, 0, False))
        else:
            reads.append(Read(_SINCE, feature.name, feature.field, 0, feature.horizon_ms, False))
    since_last = tuple(f for f in features if isinstance(f, SinceLast))
    return Plan(tuple(f.name for f in features), tuple(reads),
                tuple(Group(rep, tuple(targets.items())) for rep, targets in groups.values()),
                series, since_last, {f.name: f.horizon_ms for f in since_last})
