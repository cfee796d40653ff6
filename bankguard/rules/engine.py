"""Which rules run for a scenario, which features they need, and running them."""

from __future__ import annotations

import pandas as pd

from bankguard.features.spec import Feature
from bankguard.features.vectorized import compute_features
from bankguard.rules.base import RULES, Batch, Hit, Rule
from bankguard.rules.config import RulesConfig


def active_rules(scenario: str, config: RulesConfig) -> list[Rule]:
    return [rule for rule in RULES.values()
            if rule.id not in config.disabled_rules and rule.applies_to(scenario, config)]


def features_for(scenario: str, config: RulesConfig, extra: tuple[Feature, ...] = ()) -> tuple[Feature, ...]:
    """Every feature the scenario's active rules read, then ``extra`` (the models'), each once
    (by name): one pass of either feature engine serves rules and models."""
    unique: dict[str, Feature] = {}
    for feature in (*(f for rule in active_rules(scenario, config) for f in rule.features(config)), *extra):
        previous = unique.setdefault(feature.name, feature)
        if previous != feature:
            raise ValueError(f"feature {feature.name} defined two ways")
    return tuple(unique.values())


def evaluate(batch: Batch, config: RulesConfig) -> list[Hit]:
    """All hits of the scenario's active rules on a batch, by row then rule."""
    hits = [hit for rule in active_rules(batch.scenario, config) for hit in rule.evaluate(batch, config)]
    return sorted(hits, key=lambda hit: (hit.row, hit.rule))


def evaluate_frame(frame: pd.DataFrame, scenario: str, config: RulesConfig,
                   extra: tuple[Feature, ...] = ()) -> tuple[Batch, list[Hit]]:
    """The batch path: features computed over the whole table, then the same rules.

    ``frame`` needs ``entity_id`` and ``t_ms`` columns plus the event fields; ``extra``
    features are computed in the same pass and returned in the batch (``batch.features``).
    """
    features = compute_features(frame, features_for(scenario, config, extra))
    batch = Batch(scenario, features, frame=frame)
    return batch, evaluate(batch, config)
