"""Every registered rule keeps the rule contract, checked on its scenarios' generated traffic:
it reads only the features it declares, every hit has reasons and the same evidence keys,
its parameters are a typed model, and the batch engine and the stream scorer agree on it."""

from __future__ import annotations

import math

import orjson
import pytest

from bankguard.features.vectorized import compute_features
from bankguard.rules import RULES, Batch
from bankguard.rules.config import SCORES, RuleParams, load_rules
from bankguard.rules.context import ContextRule
from bankguard.scenarios import SCENARIOS
from scenario_traffic import batch_scored, stream_scored

CONFIG = load_rules()
CASES = [(rule_id, scenario) for rule_id, rule in RULES.items() for scenario in SCENARIOS
         if rule.applies_to(scenario, CONFIG)]


def test_every_rule_runs_somewhere_and_every_scenario_has_a_context_rule():
    assert {rule_id for rule_id, _ in CASES} == set(RULES)
    for key, unit in SCENARIOS.items():
        assert [rule.id for rule in unit.rules] == [r for r, s in CASES if s == key and r.startswith(f"{key}.")]


# Known gap: the generator's churning episodes do not meet the rule's own habit test within
# the scored traffic, so this rule's hits are checked only by its crafted broker-tier cases.
SILENT_ON_GENERATED_TRAFFIC = {"wealth_product.churning"}


@pytest.mark.parametrize("rule_id", sorted(set(RULES) - SILENT_ON_GENERATED_TRAFFIC))
def test_every_rule_fires_on_generated_traffic(rule_id):
    """The checks below look at hits: a rule that never fires would pass them all."""
    fired = {scenario for r, scenario in CASES if r == rule_id
             for key in batch_scored(scenario).keys if key[1] == rule_id}
    assert fired, f"{rule_id} fires on none of its scenarios' traffic"


@pytest.mark.parametrize(("rule_id", "scenario"), CASES)
def test_rule_reads_only_its_declared_features_and_explains_every_hit(rule_id, scenario):
    rule = RULES[rule_id]
    traffic = batch_scored(scenario)
    declared = compute_features(traffic.frame, rule.features(CONFIG))  # nothing else: an undeclared read fails
    hits = rule.evaluate(Batch(scenario, declared, frame=traffic.frame), CONFIG)
    assert {(h.row, h.severity) for h in hits} == {(h.row, h.severity) for h in traffic.hits
                                                   if h.rule == rule_id}
    evidence_keys = {frozenset(hit.evidence) for hit in hits}
    assert len(evidence_keys) <= 1 and all(evidence_keys), f"{rule_id}: evidence keys {evidence_keys}"
    for hit in hits:
        assert hit.rule == rule_id and hit.version == rule.version
        assert hit.reasons and all(isinstance(reason, str) and reason.strip() for reason in hit.reasons)
        assert not any("nan" in reason.split() for reason in hit.reasons), hit.reasons
        assert hit.score == SCORES[hit.severity]
        orjson.dumps(hit.evidence)  # plain JSON values
        assert all(not (isinstance(v, float) and math.isnan(v)) for v in hit.evidence.values())


@pytest.mark.parametrize(("rule_id", "scenario"), CASES)
def test_batch_engine_and_stream_scorer_agree_on_the_rule(rule_id, scenario):
    stream, batch = stream_scored(scenario).keys, batch_scored(scenario).keys
    assert {key for key in stream if key[1] == rule_id} == {key for key in batch if key[1] == rule_id}


@pytest.mark.parametrize("rule_id", [rule_id for rule_id, rule in RULES.items() if isinstance(rule, ContextRule)])
def test_context_rule_parameters_are_a_strict_typed_model(rule_id):
    rule = RULES[rule_id]
    assert isinstance(rule, ContextRule)
    assert issubclass(rule.parameters, RuleParams)
    assert rule.parameters.model_config.get("extra") == "forbid"
    defaults = rule.parameters()
    assert rule.params(CONFIG) == defaults  # the shipped configuration leaves the defaults
    assert rule.summary.strip()
