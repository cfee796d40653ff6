"""What every scenario generator shares: entities, a simulated clock and injected patterns.

A generator produces *background* traffic vectorised with numpy (one call per batch,
no Faker in the hot path: Faker fills pools once at start-up), and *risk patterns*:
multi-event episodes planned for one entity (or a group of peers) that only context
reveals: velocity, a sequence, a departure from the entity's own history or from its
peers. Each pattern event carries its pattern name as ground truth; the event itself
never does.
"""

from __future__ import annotations

import heapq
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, ClassVar, NamedTuple

import numpy as np
from faker import Faker

from bankguard.events import iso_times
from bankguard.scenarios import SCENARIOS

Event = dict[str, Any]


class Emitted(NamedTuple):
    """One generated event with its key, Kafka timestamp and ground truth."""

    key: str
    timestamp_ms: int
    event: Event
    pattern: str | None  # None: legitimate traffic


@dataclass(frozen=True)
class Pattern:
    """An injected risk pattern.

    ``rate`` is the expected number of episodes started per background event; the
    episode's events (usually several) are all labelled with ``name``. ``plan``
    returns ``(time offset in ms from the start, event fields)`` pairs; the base
    class fills in ids, entity and time. A field ``_entity`` (an entity index) sends
    that event to another entity, for patterns spread over peers (rings, mule herds).

    ``benign`` marks a legitimate look-alike: the same events as a risk pattern in
    another order. Its events are not labelled (they are legitimate traffic), so only a
    model that reads the order of an entity's events can tell the two apart. With
    ``order_only`` false, the look-alike differs in more than order (whose device, what
    follows): it is there so no single field of the risk pattern stands out.
    """

    name: str
    rate: float
    plan: Callable[[int, int], list[tuple[int, Event]]]  # (entity index, start ms) -> events
    description: str = ""
    benign: bool = False
    order_only: bool = True


@dataclass(order=True)
class _Pending:
    timestamp_ms: int
    seq: int
    entity: int = field(compare=False)
    fields: Event = field(compare=False)
    pattern: str | None = field(compare=False)


class FakerPools:
    """Strings drawn from Faker once, then indexed by numpy integers (fast and seeded)."""

    def __init__(self, seed: int, size: int = 2_000) -> None:
        fake = Faker(["en_US", "zh_CN"])
        fake.seed_instance(seed)
        self.size = size
        self.companies = [fake.company() for _ in range(size)]
        self.names = [fake.name() for _ in range(size)]
        self.ipv4 = [fake.ipv4_public() for _ in range(size)]

    def pick(self, pool: Sequence[str], indices: np.ndarray) -> list[str]:
        return [pool[i] for i in indices.tolist()]


@lru_cache(maxsize=4)
def shared_pools(seed: int) -> FakerPools:
    """Faker's pools take over a second to draw; every generator of one seed draws the same
    ones, so they are drawn once per seed and process and shared (they are only read)."""
    return FakerPools(seed)


class ScenarioGenerator(ABC):
    """Base of the nine scenario generators.

    Subclasses set ``scenario`` and ``code``, build per-entity profiles in
    :meth:`init_entities`, produce legitimate traffic in :meth:`background`, and
    declare their risk patterns in :meth:`patterns`.
    """

    scenario: ClassVar[str]
    code: ClassVar[str]  # short tag used in event ids

    def __init__(self, seed: int, n_entities: int = 5_000, pools: FakerPools | None = None) -> None:
        self.seed = seed
        self.rng = np.random.default_rng([seed, sum(self.scenario.encode())])
        self.pools = pools or shared_pools(seed)
        self.n_entities = n_entities
        prefix = SCENARIOS[self.scenario].entity_prefix
        self.entity_ids = [f"{prefix}-{i:07d}" for i in range(n_entities)]
        # Activity is skewed: a few entities are busy, most are quiet; capped at ten times
        # the mean so no single entity carries a share of traffic no real customer has.
        weights = (self.rng.pareto(1.5, n_entities) + 1.0).clip(max=30.0)
        self.activity = weights / weights.sum()
        self._seq = 0
        self._pending: list[_Pending] = []
        self._pending_seq = 0
        self.init_entities()
        self._patterns = self.patterns()

    # -- to implement -------------------------------------------------------------
    @abstractmethod
    def init_entities(self) -> None:
        """Draw per-entity profile arrays (home country, usual amount scale...)."""

    @abstractmethod
    def background(self, entities: np.ndarray, timestamps_ms: np.ndarray) -> list[Event]:
        """Legitimate events for these entities at these times (scenario fields only)."""

    @abstractmethod
    def patterns(self) -> list[Pattern]:
        """The risk patterns this scenario injects."""

    # -- shared machinery -----------------------------------------------------------
    @property
    def pattern_names(self) -> list[str]:
        """The risk patterns' names: the labels this generator's truth can carry."""
        return [pattern.name for pattern in self._patterns if not pattern.benign]

    @property
    def order_only(self) -> bool:
        """Whether a risk pattern has a benign look-alike that differs only in order."""
        return any(pattern.benign and pattern.order_only for pattern in self._patterns)

    def pick_entities(self, count: int) -> np.ndarray:
        return self.rng.choice(self.n_entities, size=count, p=self.activity)

    def generate(self, start_ms: int, end_ms: int, count: int) -> list[Emitted]:
        """``count`` background events spread over ``[start_ms, end_ms)``, plus every
        pattern event that falls in the window, in time order."""
        times = np.sort(self.rng.integers(start_ms, max(end_ms, start_ms + 1), size=count))
        entities = self.pick_entities(count)
        events = self.background(entities, times)
        self._schedule_patterns(count, start_ms, end_ms)
        out = self._finish(entities, times, events)
        due = self._due(end_ms)
        if not due:
            return out
        injected = self._finish(
            np.array([p.entity for p in due], dtype=np.int64),
            np.array([p.timestamp_ms for p in due], dtype=np.int64),
            [p.fields for p in due],
            [p.pattern for p in due],
        )
        return list(heapq.merge(out, injected, key=lambda row: row.timestamp_ms))

    def _schedule_patterns(self, count: int, start_ms: int, end_ms: int) -> None:
        for pattern in self._patterns:
            episodes = self.rng.poisson(pattern.rate * count)
            for _ in range(episodes):
                t0 = int(self.rng.integers(start_ms, max(end_ms, start_ms + 1)))
                entity = int(self.pick_entities(1)[0])
                for offset_ms, fields in pattern.plan(entity, t0):
                    target = int(fields.pop("_entity", entity))
                    self._pending_seq += 1
                    heapq.heappush(
                        self._pending,
                        _Pending(t0 + max(0, int(offset_ms)), self._pending_seq, target, fields,
                                 None if pattern.benign else pattern.name),
                    )

    def _due(self, end_ms: int) -> list[_Pending]:
        due = []
        while self._pending and self._pending[0].timestamp_ms < end_ms:
            due.append(heapq.heappop(self._pending))
        return due

    def _finish(
        self,
        entities: np.ndarray,
        timestamps_ms: np.ndarray,
        events: list[Event],
        patterns: Sequence[str | None] | None = None,
    ) -> list[Emitted]:
        """Add the envelope (ids, entity, time) to scenario fields."""
        iso = iso_times(timestamps_ms)
        first = self._seq
        self._seq += len(events)
        prefix = f"{self.code}-{self.seed}-"
        out = []
        labels = patterns if patterns is not None else [None] * len(events)
        for i, (entity, ts, when, fields, label) in enumerate(
            zip(entities.tolist(), timestamps_ms.tolist(), iso, events, labels, strict=True)
        ):
            key = self.entity_ids[fields.pop("_entity", entity)]  # an entity issued for this event
            event = {
                "schema_version": 1,
                "event_id": f"{prefix}{first + i}",
                "scenario": self.scenario,
                "entity_id": key,
                "event_time": when,
                **fields,
            }
            out.append(Emitted(key, ts, event, label))
        return out
