"""Generating, inspecting and scoring scenario traffic, shared by the scenario and rule tests."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache

import orjson
import pandas as pd
import pytest

from bankguard.events import parse_event
from bankguard.producers.scenarios.base import Emitted, Event, FakerPools, Pattern, ScenarioGenerator
from bankguard.rules import Hit, evaluate_frame
from bankguard.rules.config import load_rules
from bankguard.stream_agents.scoring import Incoming, StreamScorer
from bankguard.stream_agents.state import StateStore
from generated import traffic

START_MS = 1_793_000_000_000  # the generated traffic's first event time
MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR

Plan = Callable[[int, int], list[tuple[int, Event]]]
Generated = tuple[ScenarioGenerator, list[Emitted]]  # a recording generator and its run
Run = Callable[..., list[Emitted]]


def recording(generator: type[ScenarioGenerator]) -> type[ScenarioGenerator]:
    """A subclass that remembers the episode of each pattern event: the stream carries only the
    pattern name, and an episode may hit an entity twice or spread over peers (``_entity``)."""

    class Recorded(generator):  # type: ignore[valid-type, misc]
        def patterns(self) -> list[Pattern]:
            self.episode: dict[tuple[str, int], tuple[int, int]] = {}
            return [replace(p, plan=self._recording(p.plan)) for p in super().patterns()]

        def _recording(self, plan: Plan) -> Plan:
            def recorded(entity: int, t0: int) -> list[tuple[int, Event]]:
                planned = plan(entity, t0)
                for offset, fields in planned:
                    key = self.entity_ids[fields.get("_entity", entity)]
                    self.episode[(key, t0 + max(0, offset))] = (entity, t0)
                return planned
            return recorded

    Recorded.__name__ = f"Recorded{generator.__name__}"
    return Recorded


def drained_run(start_ms: int, busy_ms: int, drain_ms: int) -> Run:
    """``count`` events over ``busy_ms``, then an empty ``drain_ms`` that lets the episodes
    still running finish, so every episode is whole."""
    def run(g: ScenarioGenerator, count: int = 20_000) -> list[Emitted]:
        return (g.generate(start_ms, start_ms + busy_ms, count)
                + g.generate(start_ms + busy_ms, start_ms + busy_ms + drain_ms, 0))
    return run


def recorded_fixtures(generator: type[ScenarioGenerator], run: Run) -> tuple[Callable, Callable]:
    """Module fixtures ``generated`` (a recording generator, seed 11, and its run) and ``rows``."""
    recorded = recording(generator)

    @pytest.fixture(scope="module")
    def generated() -> Generated:
        g = recorded(seed=11, n_entities=1_000)
        return g, run(g)

    @pytest.fixture(scope="module")
    def rows(generated: Generated) -> list[Emitted]:
        return generated[1]

    return generated, rows


def period_fixtures(generator: type[ScenarioGenerator], *, seed: int, entities: int, pool_size: int,
                    period_ms: int, periods: int, per_period: int,
                    start_ms: int = START_MS) -> tuple[Callable, Callable]:
    """Module fixtures ``pools`` (Faker pools of this seed) and ``rows`` (``periods`` periods of
    ``per_period`` events from the generator with those pools)."""

    @pytest.fixture(scope="module")
    def pools() -> FakerPools:
        return FakerPools(seed, size=pool_size)

    @pytest.fixture(scope="module")
    def rows(pools: FakerPools) -> list[Emitted]:
        gen = generator(seed=seed, n_entities=entities, pools=pools)
        return generate_periods(gen, start_ms, period_ms, periods, per_period)

    return pools, rows


def busy(rows: list[Emitted], n_entities: int = 1_000) -> set[str]:
    """Entities with over ten times the average traffic, where coincidences pile up."""
    counts = Counter(row.key for row in rows if row.pattern is None)
    limit = 10 * sum(counts.values()) / n_entities
    return {key for key, count in counts.items() if count > limit}


def episodes(generated: tuple[ScenarioGenerator, list[Emitted]], name: str) -> list[list[Emitted]]:
    """The events of each episode of pattern ``name``, grouped."""
    g, rows = generated
    out: dict[tuple[int, int], list[Emitted]] = defaultdict(list)
    for row in rows:
        if row.pattern == name:
            out[g.episode[(row.key, row.timestamp_ms)]].append(row)
    return list(out.values())


def generate_periods(generator: ScenarioGenerator, start_ms: int, period_ms: int, periods: int,
                     per_period: int) -> list[Emitted]:
    """``periods`` consecutive periods of ``per_period`` events each."""
    return [row for i in range(periods)
            for row in generator.generate(start_ms + i * period_ms, start_ms + (i + 1) * period_ms, per_period)]


def grouped(rows: list[Emitted], pattern: str | None, field: str = "entity_id") -> dict[str, list[Emitted]]:
    """Rows of ``pattern`` (``None``: legitimate traffic) grouped by an event field."""
    groups: dict[str, list[Emitted]] = defaultdict(list)
    for row in rows:
        if row.pattern == pattern:
            groups[row.event[field]].append(row)
    return groups


def assert_events_valid(scenario: str, rows: list[Emitted]) -> None:
    """Every event parses against the scenario's schema and is keyed by its entity."""
    for row in rows:
        assert parse_event(scenario, orjson.dumps(row.event)).entity_id == row.key


# -- scored traffic, shared by the rule conformance and the scoring-paths tests ----------

Key = tuple[str, str, str]  # (event id, rule id, severity)


@dataclass(frozen=True)
class BatchScored:
    """A scenario's shared generated traffic (:func:`generated.traffic`), scored by the batch engine."""

    rows: tuple[Emitted, ...]
    frame: pd.DataFrame
    hits: list[Hit]
    keys: set[Key]


@dataclass(frozen=True)
class StreamScored:
    """The same traffic scored event by event by the worker's scorer, in the worker's batches."""

    keys: set[Key]
    dead_letters: int


@cache
def batch_scored(scenario: str) -> BatchScored:
    """Computed once per test process and scenario: several test files read the same run."""
    rows = traffic(scenario)
    frame = pd.DataFrame([row.event for row in rows])
    frame["t_ms"] = [row.timestamp_ms for row in rows]
    _, hits = evaluate_frame(frame, scenario, load_rules())
    return BatchScored(rows, frame, hits, {(rows[h.row].event["event_id"], h.rule, h.severity) for h in hits})


@cache
def stream_scored(scenario: str) -> StreamScored:
    """The costlier half (about a second per scenario), so it runs only for the tests that compare."""
    config = load_rules()
    rows = traffic(scenario)
    scorer = StreamScorer(StateStore({}), lambda: config)
    keys: set[Key] = set()
    dead = 0
    for start in range(0, len(rows), 250):  # batches, as take_events delivers them
        chunk = rows[start:start + 250]
        scored = scorer.score([Incoming(scenario, "t", 0, start + i, r.key.encode(), orjson.dumps(r.event),
                                        r.timestamp_ms) for i, r in enumerate(chunk)])
        dead += len(scored.dead_letters)
        for alert in scored.alerts:
            keys.add((orjson.loads(alert.value)["event_id"], alert.detector, alert.severity))
    return StreamScored(keys, dead)
