"""Poison input in process: every malformed kind is dead-lettered with its reason and original
bytes while the events around it are scored as if it were not there, and an event whose
scoring raises is dead-lettered alone, its state updates rolled back."""

from __future__ import annotations

import importlib.util
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from bankguard.events import InvalidEvent, decode_event
from bankguard.features.incremental import EntityState
from bankguard.rules.config import load_rules
from bankguard.stream_agents.scoring import SCORING_ERROR, Incoming, Scored, StreamScorer
from bankguard.stream_agents.state import StateStore
from scoring_helpers import event


def _benchmark() -> Any:
    """The corpus lives with the benchmark that sends it through the real broker."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "poison.py"
    spec = importlib.util.spec_from_file_location("poison_benchmark", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


poison = _benchmark()
CONFIG = load_rules()


def good_events() -> list[dict]:
    """Card and AML traffic with alerts in it (gambling memos, a large cash payment)."""
    out = []
    for i in range(30):
        at = timedelta(minutes=i)
        out.append(event("credit_card", f"CARD-{i % 4}", at))
        out.append(event("aml_kyc", f"CUS-{i % 3}", at, memo="赌资" if i % 7 == 0 else "餐饮",
                         amount=60_000.0 if i % 11 == 0 else 800.0))
    return out


def incoming(events: list[dict], partition: int = 0) -> list[Incoming]:
    return [Incoming(e["scenario"], f"t.tx.{e['scenario']}", partition, offset, e["entity_id"].encode(),
                     orjson.dumps(e), None) for offset, e in enumerate(events)]


def scored(messages: list[Incoming], models: Any = None) -> tuple[Scored, StateStore]:
    store = StateStore({})
    return StreamScorer(store, lambda: CONFIG, models).score(messages), store


def alert_values(out: Scored) -> set[bytes]:
    """The alerts' content, without the wall-clock ``detected_at``."""
    return {orjson.dumps({k: v for k, v in orjson.loads(alert.value).items() if k != "detected_at"},
                         option=orjson.OPT_SORT_KEYS) for alert in out.alerts}


def test_the_corpus_has_every_kind_the_issue_names():
    kinds = {p.kind for p in poison.poison_corpus(len(poison.KINDS), seed=1)}
    assert kinds == set(poison.KINDS) and len(kinds) >= 12
    big = poison.poison_corpus(2_000, seed=2)
    assert len(big) == 2_000 and {p.kind for p in big} == set(poison.KINDS)


@pytest.mark.parametrize("kind", list(poison.KINDS))
def test_each_poison_kind_reaches_the_dlq_and_the_batch_around_it_is_scored(kind):
    [bad] = [p for p in poison.poison_corpus(len(poison.KINDS), seed=3) if p.kind == kind]
    good = incoming(good_events())
    clean, _ = scored(good)
    assert clean.alerts and not clean.dead_letters
    middle = len(good) // 2
    bad_message = Incoming(bad.scenario, "t.tx.credit_card", 1, 0, bad.key, bad.value or b"", 1_790_000_000_000)
    out, _ = scored(good[:middle] + [bad_message] + good[middle:])

    [letter] = out.dead_letters
    assert letter.letter.reason == bad.reason, letter.letter.detail
    assert letter.value == (bad.value or b"") and letter.key == bad.key  # the original bytes
    assert (letter.letter.partition, letter.letter.offset) == (1, 0)
    assert out.valid == clean.valid == {"credit_card": 30, "aml_kyc": 30}
    assert alert_values(out) == alert_values(clean)


def test_a_valid_event_is_decoded_once_into_the_fields_the_scoring_reads():
    raw = orjson.dumps(event("aml_kyc", "CUS-1", timedelta(0), memo='he wrote "amount": 5, "x": 1'))
    parsed = decode_event("aml_kyc", raw)
    assert parsed.fields == orjson.loads(raw)  # quotes and colons in text are no duplicate key
    assert parsed.model.entity_id == "CUS-1"
    with pytest.raises(InvalidEvent, match="duplicate_key"):
        decode_event("aml_kyc", raw[:-1] + b', "amount" : 9e3}')


class FailsOn:
    """A model stage with a bug that one event triggers, after the rules' state took that event."""

    def features(self, scenario: str) -> tuple:
        return ()

    def reads_sequences(self, scenario: str) -> bool:
        return True

    def sequence(self, state: EntityState, event: dict) -> np.ndarray:
        if event.get("memo") == "boom":
            raise ZeroDivisionError("detector bug")
        return np.zeros(1)


def test_a_scoring_failure_dead_letters_only_that_event_and_rolls_back_its_state():
    events = good_events()
    failing = event("aml_kyc", "CUS-1", timedelta(minutes=10, seconds=30), memo="boom")
    with_failure = events[:21] + [failing] + events[21:]  # CUS-1 has events before and after it
    messages = incoming(with_failure)
    out, store = scored(messages, FailsOn())

    [letter] = out.dead_letters
    assert letter.letter.reason == SCORING_ERROR
    assert "ZeroDivisionError: detector bug" in letter.letter.detail
    assert letter.value == orjson.dumps(failing) and letter.letter.offset == 21

    # Everything else as if the failing event never came (same offsets for the others).
    others = [m for m in messages if m.offset != 21]
    expected, expected_store = scored(others, FailsOn())
    assert out.valid == {"credit_card": 30, "aml_kyc": 30}
    assert alert_values(out) == alert_values(expected) and out.alerts
    assert dict(store.backing) == dict(expected_store.backing)


def test_the_failing_event_is_retried_on_redelivery_and_the_others_are_not_applied_twice():
    messages = incoming(good_events()[:10] + [event("aml_kyc", "CUS-9", timedelta(hours=1), memo="boom")])
    store = StateStore({})
    scorer = StreamScorer(store, lambda: CONFIG, FailsOn())
    first = scorer.score(messages)
    before = dict(store.backing)
    again = scorer.score(messages)  # redelivered after a restart without a commit
    assert [d.letter.reason for d in first.dead_letters] == [d.letter.reason for d in again.dead_letters] == [
        SCORING_ERROR]
    assert not again.alerts and dict(store.backing) == before
