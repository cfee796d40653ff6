"""Following injected episodes in generated traffic, for the per-scenario generator tests."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import replace

from bankguard.producers.scenarios.base import Emitted, Event, Pattern, ScenarioGenerator

Plan = Callable[[int, int], list[tuple[int, Event]]]


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
