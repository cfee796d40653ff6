"""No single field of a generated event gives its label away.

A risk pattern's events draw their own fields from the same distributions as the
legitimate traffic of similar entities; only context (velocity, sequence, history,
peers, counterparty) tells them apart. Measured on a generated week per scenario: for
every categorical field (strings, booleans, integers with few values), any value seen
in at least ``MIN_EVENTS`` events has a fraud share of at most ``MAX_LIFT`` times the
scenario's base rate. A model that one-hot encodes the field can then learn no more
from it than a mild prior.

A string field with more than ``VOCABULARY`` values is an identifier (a device, an
address, a counterparty): its values are context, which the patterns are meant to
differ in, so only the *shape* of numbered ids is checked (each run of digits as ``9``),
which catches an id scheme that only fraud uses ("X-0012345" beside the customers'
"D-0012345"). Names (companies, bank codes) are identifiers with no scheme to compare.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from functools import cache
from typing import Any

import pytest

from bankguard.features.spec import DAY_MS
from bankguard.models.dataset import START_MS, make_generator
from bankguard.scenarios import SCENARIOS

MIN_EVENTS = 50
MAX_LIFT = 10.0
DAYS, EVENTS_PER_DAY, ENTITIES = 7, 6_000, 400
ENVELOPE = {"schema_version", "event_id", "scenario", "entity_id", "event_time"}
FEW_INTEGERS = 40  # an integer field with at most this many values is a category
VOCABULARY = 64  # a string field with more values is an identifier
DIGITS = re.compile("[0-9]+")


@cache
def generated_week(scenario: str) -> list[tuple[dict[str, Any], bool]]:
    """(event, is risk) for a week of seeded traffic of one scenario (once per test process)."""
    generator = make_generator(scenario, seed=11, n_entities=ENTITIES)
    rows = []
    for day in range(DAYS):
        start = START_MS + day * DAY_MS
        rows += [(row.event, row.pattern is not None)
                 for row in generator.generate(start, start + DAY_MS, EVENTS_PER_DAY)]
    return rows


def categories(rows: list[tuple[dict[str, Any], bool]]) -> dict[str, list[Any]]:
    """Per categorical field (or identifier shape, ``<field>:shape``), each row's value."""
    values: dict[str, set[Any]] = defaultdict(set)
    kinds: dict[str, set[type]] = defaultdict(set)
    for event, _ in rows:
        for name, value in event.items():
            if name in ENVELOPE or value is None:
                continue
            kinds[name].add(type(value))
            if len(values[name]) <= VOCABULARY:
                values[name].add(value)
    out: dict[str, list[Any]] = {}
    for name, types in sorted(kinds.items()):
        column = [event.get(name) for event, _ in rows]
        if (types == {int} and len(values[name]) <= FEW_INTEGERS) or types == {bool}:
            out[name] = column
        elif str in types and len(values[name]) <= VOCABULARY:
            out[name] = column
        elif str in types:
            out[f"{name}:shape"] = [DIGITS.sub("9", v) if isinstance(v, str) and DIGITS.search(v) else None
                                    for v in column]
    return out


def giveaways(rows: list[tuple[dict[str, Any], bool]]) -> list[str]:
    """Every (field, value) seen often enough whose fraud share exceeds the allowed lift."""
    labels = [label for _, label in rows]
    base = sum(labels) / len(rows)
    found = []
    for name, column in categories(rows).items():
        seen: Counter[Any] = Counter(column)
        fraud: Counter[Any] = Counter(value for value, label in zip(column, labels, strict=True) if label)
        for value, count in seen.items():
            if value is None and name.endswith(":shape"):
                continue  # names without a number scheme: nothing to compare
            share = fraud[value] / count
            if count >= MIN_EVENTS and share > MAX_LIFT * base:
                found.append(f"{name}={value!r}: {fraud[value]}/{count} risk ({share:.1%}, base {base:.2%})")
    return found


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_no_categorical_value_gives_the_label_away(scenario):
    rows = generated_week(scenario)
    base = sum(label for _, label in rows) / len(rows)
    assert 0.002 < base < 0.05, f"{scenario}: base rate {base:.2%} is not a rare-event rate"
    assert giveaways(rows) == []


@pytest.mark.xdist_group("credit_card")  # shares the generated week with that scenario's test
def test_the_check_finds_a_planted_giveaway():
    """A field that only risk events carry is caught (the check can fail)."""
    rows = [({**event, "channel_x": "dark" if label else "web",
              "device_x": f"{'X' if label else 'D'}-{i:07d}"}, label)
            for i, (event, label) in enumerate(generated_week("credit_card"))]
    found = giveaways(rows)
    assert any(line.startswith("channel_x='dark'") for line in found)
    assert any(line.startswith("device_x:shape='X-9'") for line in found)
