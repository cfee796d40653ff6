"""Datasets: recorded JSONL traffic gives the same features as the generator it came from,
and the time split keeps training, validation and test apart with a gap."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from bankguard.errors import BankguardError
from bankguard.features.spec import DAY_MS
from bankguard.models.dataset import SMOKE, build_dataset, config_for_records, generate_records, load_records

SCENARIO = "insurance_claims"
CONFIG = replace(SMOKE, seed=11)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """The generator's traffic written as the topics carry it: events, and truth records."""
    records, patterns = generate_records(SCENARIO, CONFIG)
    folder = tmp_path_factory.mktemp("recorded")
    with (folder / "events.jsonl").open("w", encoding="utf-8") as events, \
            (folder / "truth.jsonl").open("w", encoding="utf-8") as truth:
        for record, pattern in zip(records, patterns, strict=True):
            event = {k: v for k, v in record.items() if k != "t_ms"}
            events.write(json.dumps(event, ensure_ascii=False) + "\n")
            if pattern is not None:
                truth.write(json.dumps({"schema_version": 1, "event_id": event["event_id"], "scenario": SCENARIO,
                                        "entity_id": event["entity_id"], "event_time": event["event_time"],
                                        "label": 1, "pattern": pattern}) + "\n")
        events.write(json.dumps({"scenario": "credit_card", "event_id": "other"}) + "\n")  # skipped
    return folder / "events.jsonl", folder / "truth.jsonl"


def test_recorded_traffic_gives_the_generated_features(recorded):
    events, truth = recorded
    records, patterns = load_records(events, truth, SCENARIO)
    generated = build_dataset(SCENARIO, CONFIG)
    loaded = build_dataset(SCENARIO, CONFIG, records, patterns)
    np.testing.assert_array_equal(loaded.X, generated.X)
    np.testing.assert_array_equal(loaded.seq, generated.seq)
    np.testing.assert_array_equal(loaded.y, generated.y)
    assert loaded.y.sum() > 0


def test_time_split_is_ordered_with_a_gap():
    data = build_dataset(SCENARIO, CONFIG)
    t = data.frame["t_ms"].to_numpy()
    split = data.split
    assert t[split.train].max() < t[split.val].min()
    gap_days = (t[split.test].min() // DAY_MS) - (t[split.val].max() // DAY_MS) - 1
    assert gap_days >= CONFIG.gap_days
    assert t[split.test].max() // DAY_MS - t[split.test].min() // DAY_MS == CONFIG.test_days - 1
    assert t[split.train].min() // DAY_MS >= t.min() // DAY_MS + CONFIG.warmup_days


def test_recorded_split_follows_the_span(recorded):
    records, _ = load_records(*recorded, SCENARIO)
    config = config_for_records(records)
    assert config.days == CONFIG.days and config.test_days >= 1
    with pytest.raises(BankguardError, match="training needs at least"):
        config_for_records(records[:50])


def test_unreadable_inputs_are_one_line_errors(tmp_path, recorded):
    with pytest.raises(BankguardError, match="cannot read"):
        load_records(tmp_path / "missing.jsonl", recorded[1], SCENARIO)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"scenario": "insurance_claims"\n')
    with pytest.raises(BankguardError, match="bad JSONL record near line 1"):
        load_records(bad, recorded[1], SCENARIO)


@pytest.mark.broker  # runs a `bankguard` command
def test_cli_trains_on_recorded_traffic(tmp_path, recorded):
    events, truth = recorded
    out = tmp_path / "registry"
    result = subprocess.run([sys.executable, "-m", "bankguard", "train", "--quick", "--no-forecast",
                             "--scenarios", SCENARIO, "--events", str(events), "--truth", str(truth),
                             "--out", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "arena.json").read_text())
    assert list(report["scenarios"]) == [SCENARIO]
    manifest = json.loads((out / SCENARIO / "hist_gbdt" / "manifest.json").read_text())
    assert manifest["training"]["data_source"]["kind"] == "jsonl"
