"""What one scenario is: everything the producers, the worker, the backtests and the models
need to know about it, declared together in its module and registered once."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bankguard.events import SCHEMA_VERSION, EventBase
from bankguard.models.features import ScenarioFeatures
from bankguard.models.sequences import Part
from bankguard.rules.base import register
from bankguard.rules.context import ContextRule


@dataclass(frozen=True)
class Scenario:
    """A banking scenario: what it monitors and keys by, its events, rules, model input and
    generator. The CLI, README and dashboards show the descriptive fields."""

    key: str
    name: str
    entity: str
    entity_prefix: str  # of the generated entity ids (``CARD-0000042``)
    risk_types: tuple[str, ...]
    controls: tuple[str, ...]
    event: type[EventBase]  # the event model; its JSON Schema is committed (bankguard/schemas)
    rules: tuple[type[ContextRule[Any]], ...]  # at least one context rule
    features: ScenarioFeatures  # what its models read
    sequence: tuple[Part, ...]  # the fields of its LSTM step vector
    generator: str  # class name in ``bankguard.producers.scenarios.<key>``

    def __post_init__(self) -> None:
        scenario = self.event.model_fields["scenario"].default
        if scenario != self.key:
            raise ValueError(f"{self.key}: event model {self.event.__name__} is for {scenario!r}")
        if not self.rules:
            raise ValueError(f"{self.key}: no context rule")
        for rule in self.rules:
            if rule.scenario != self.key or not rule.id.startswith(f"{self.key}."):
                raise ValueError(f"{self.key}: rule {rule.id} belongs to {rule.scenario}")
        if self.features.scenario != self.key:
            raise ValueError(f"{self.key}: model features declared for {self.features.scenario}")

    @property
    def topic(self) -> str:
        """Its input topic, under the topic prefix."""
        return f"tx.{self.key}"

    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema document committed for the scenario's events."""
        schema = self.event.model_json_schema()
        schema["$id"] = f"https://bankguard.dev/schemas/events/{self.key}.v{SCHEMA_VERSION}.json"
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        return schema


def registry(units: Iterable[Scenario]) -> dict[str, Scenario]:
    """The units by key, each key and entity prefix once, their context rules registered."""
    out: dict[str, Scenario] = {}
    prefixes: dict[str, str] = {}
    for unit in units:
        if unit.key in out:
            raise ValueError(f"scenario {unit.key} registered twice")
        if (other := prefixes.setdefault(unit.entity_prefix, unit.key)) != unit.key:
            raise ValueError(f"{unit.key}: entity prefix {unit.entity_prefix} is {other}'s")
        out[unit.key] = unit
    for unit in out.values():
        for rule in unit.rules:
            register(rule)
    return out
