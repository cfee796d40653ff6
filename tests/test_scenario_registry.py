"""The scenario registry is the one list of scenarios: each unit is whole and consistent,
and what is kept outside the code (schemas, topics, README) matches it."""

from __future__ import annotations

import re
from dataclasses import replace
from importlib import import_module
from pathlib import Path

import pytest

from bankguard.models.features import SPECS
from bankguard.models.sequences import PARTS, vector_width
from bankguard.producers.scenarios import generator_class
from bankguard.rules import RULES
from bankguard.scenarios import SCENARIOS
from bankguard.scenarios.unit import registry
from bankguard.schema_files import SCHEMA_DIR, record_schemas, schema_path
from bankguard.topics import Topics

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")


def test_every_unit_is_in_its_own_module():
    units = {path.stem for path in (REPO / "bankguard" / "scenarios").glob("*.py")} - {"__init__", "unit"}
    assert set(SCENARIOS) == units
    for key, unit in SCENARIOS.items():
        assert import_module(f"bankguard.scenarios.{key}").SCENARIO is unit
        assert unit.event.__module__ == f"bankguard.scenarios.{key}"
        assert all(rule.__module__ == f"bankguard.scenarios.{key}" for rule in unit.rules)


@pytest.mark.parametrize("key", list(SCENARIOS))
def test_everything_else_reads_the_unit(key):
    unit = SCENARIOS[key]
    assert SPECS[key] is unit.features and PARTS[key] == unit.sequence
    assert vector_width(key) == 4 + sum(part.width for part in unit.sequence)
    generator = generator_class(key)
    assert generator.__name__ == unit.generator and generator.scenario == key
    assert all(RULES[rule.id].__class__ is rule for rule in unit.rules)
    assert Topics("bank").scenario(key) == f"bank.{unit.topic}" == f"bank.tx.{key}"
    assert Topics("bank").scenario_of(f"bank.tx.{key}") == key


def test_committed_schemas_are_the_registry_s_and_no_others():
    records = record_schemas()
    committed = {path.name for path in SCHEMA_DIR.glob("*.json")} - set(records)
    assert committed == {schema_path(key).name for key in SCENARIOS}
    for name, text in records.items():
        assert (SCHEMA_DIR / name).read_text() == text, f"{name} is stale: run 'bankguard schemas export'"


def test_readme_lists_every_scenario_once():
    table = README.split("\n## Scenarios\n", 1)[1].split("\n#", 1)[0]
    listed = re.findall(r"^\| `([a-z_]+)` \|", table, flags=re.MULTILINE)
    assert listed == list(SCENARIOS)
    for unit in SCENARIOS.values():
        assert f"| `{unit.key}` | {unit.entity} |" in README


def test_a_unit_that_contradicts_itself_is_refused():
    unit = SCENARIOS["credit_card"]
    with pytest.raises(ValueError, match="event model CreditCardEvent is for 'credit_card'"):
        replace(unit, key="debit_card")
    with pytest.raises(ValueError, match=r"rule aml_kyc\.structuring belongs to aml_kyc"):
        replace(unit, rules=SCENARIOS["aml_kyc"].rules)
    with pytest.raises(ValueError, match="model features declared for aml_kyc"):
        replace(unit, features=SCENARIOS["aml_kyc"].features)
    with pytest.raises(ValueError, match="no context rule"):
        replace(unit, rules=())


def test_the_registry_refuses_a_key_or_prefix_twice():
    with pytest.raises(ValueError, match="credit_card registered twice"):
        registry([SCENARIOS["credit_card"], SCENARIOS["credit_card"]])
    with pytest.raises(ValueError, match="entity prefix CUS is aml_kyc's"):
        registry([SCENARIOS["aml_kyc"], replace(SCENARIOS["wealth_product"], entity_prefix="CUS")])
