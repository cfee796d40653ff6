"""Datasets: recorded JSONL traffic gives the same features as the generator it came from,
and the time split keeps training, validation and test apart with a gap."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pytest

from bankguard.errors import BankguardError
from bankguard.features.spec import DAY_MS
from bankguard.event_files import RecordFileWriter, event_schema
from bankguard.models.dataset import (
    SMOKE,
    SplitDates,
    build_dataset,
    config_for_records,
    generate_records,
    load_records,
)

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
    read, patterns = load_records(events, truth, SCENARIO)
    assert not read.refused
    generated = build_dataset(SCENARIO, CONFIG)
    loaded = build_dataset(SCENARIO, CONFIG, read.records, patterns)
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
    records = load_records(*recorded, SCENARIO)[0].records
    config = config_for_records(records)
    assert config.days == CONFIG.days and config.test_days >= 1
    with pytest.raises(BankguardError, match="training needs at least"):
        config_for_records(records[:50])


def test_recorded_split_takes_the_users_dates(recorded):
    records = load_records(*recorded, SCENARIO)[0].records
    first = date(1970, 1, 1) + timedelta(days=min(r["t_ms"] for r in records) // DAY_MS)
    dates = SplitDates(train_from=first + timedelta(days=2), train_to=first + timedelta(days=9),
                       test_from=first + timedelta(days=11), test_to=first + timedelta(days=14), val_days=2)
    data = build_dataset(SCENARIO, config_for_records(records, dates=dates), records, [None] * len(records))
    day = data.frame["t_ms"].to_numpy() // DAY_MS - (first - date(1970, 1, 1)).days
    assert (day[data.split.train].min(), day[data.split.train].max()) == (2, 6)
    assert (day[data.split.val].min(), day[data.split.val].max()) == (7, 8)
    assert (day[data.split.test].min(), day[data.split.test].max()) == (11, 13)
    with pytest.raises(BankguardError, match="gap-days disagrees"):
        config_for_records(records, dates=replace(dates, gap_days=1))
    with pytest.raises(BankguardError, match="train-from < train-to"):
        config_for_records(records, dates=replace(dates, test_from=first + timedelta(days=8)))


def test_bad_records_are_reported_with_their_line_and_left_out(tmp_path, recorded):
    events, truth = recorded
    lines = events.read_text(encoding="utf-8").splitlines()
    good = json.loads(lines[3])
    planted = {5: "{not json", 9: json.dumps(good | {"currency": "euro"}),
               12: json.dumps({k: v for k, v in good.items() if k != "claim_type"}),
               20: json.dumps(good | {"amount": float("1e300")})}
    for number, line in planted.items():
        lines.insert(number - 1, line)
    dirty = tmp_path / "dirty.jsonl"
    dirty.write_text("\n".join(lines) + "\n", encoding="utf-8")
    read, _ = load_records(dirty, truth, SCENARIO)
    clean, _ = load_records(events, truth, SCENARIO)
    assert [refusal.where for refusal in read.refused] == [f"{dirty}:{n}" for n in planted]
    assert [refusal.reason for refusal in read.refused] == ["malformed_json", "schema_violation", "schema_violation",
                                                            "out_of_range"]
    assert "currency" in read.refused[1].detail and "claim_type" in read.refused[2].detail
    assert read.records == clean.records  # trained on the rest
    assert f"{dirty}:5" in read.report() and "4 refused" in read.report()


def test_parquet_and_json_lines_give_one_dataset_whatever_the_path(tmp_path, recorded):
    events, truth = recorded
    read, patterns = load_records(events, truth, SCENARIO)
    parquet = tmp_path / "events.parquet"
    writer = RecordFileWriter(parquet, event_schema())
    writer.write(SCENARIO, [{k: v for k, v in r.items() if k != "t_ms"} for r in read.records])
    writer.close()
    from_parquet, parquet_patterns = load_records(parquet, truth, SCENARIO)

    def present(records):  # a null field and an absent one are the same to the scoring
        return [{k: v for k, v in r.items() if v is not None} for r in records]

    assert present(from_parquet.records) == present(read.records) and parquet_patterns == patterns
    config = config_for_records(read.records)
    a = build_dataset(SCENARIO, config, read.records, patterns, {"kind": "recorded", "events": str(events)})
    respelt = tmp_path / ".." / tmp_path.name / "events.parquet"
    b = build_dataset(SCENARIO, config, from_parquet.records, parquet_patterns,
                      {"kind": "recorded", "events": str(respelt)})
    assert a.data_hash == b.data_hash
    changed = [dict(r) for r in read.records]
    changed[7]["amount"] += 1.0
    assert build_dataset(SCENARIO, config, changed, patterns, {"kind": "recorded"}).data_hash != a.data_hash


def test_unreadable_inputs_are_one_line_errors(tmp_path, recorded):
    with pytest.raises(BankguardError, match="no such file"):
        load_records(tmp_path / "missing.jsonl", recorded[1], SCENARIO)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"scenario": "insurance_claims"\n')
    with pytest.raises(BankguardError, match=f"no valid {SCENARIO} events .*bad.jsonl:1: malformed_json"):
        load_records(bad, recorded[1], SCENARIO)
    with pytest.raises(BankguardError, match="unknown file type"):
        load_records(tmp_path / "events.csv", recorded[1], SCENARIO)


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
    assert manifest["training"]["data_source"]["kind"] == "recorded"


def test_a_card_terminal_data_set_trains_and_scores(tmp_path):
    """Card, terminal (counterparty), amount and time, zero amounts included: all a card data
    set needs to train the models and be scored by them."""
    from bankguard.models.build import train_scenario
    from bankguard.models.scoring import ModelScorer
    from bankguard.models.train import PROFILES

    records, patterns = generate_records("credit_card", CONFIG)
    kept = ("schema_version", "event_id", "entity_id", "event_time", "amount", "counterparty", "scenario")
    events, truth = tmp_path / "cards.jsonl", tmp_path / "cards.truth.jsonl"
    with events.open("w", encoding="utf-8") as out, truth.open("w", encoding="utf-8") as labels:
        for i, (record, pattern) in enumerate(zip(records, patterns, strict=True)):
            event = {k: record[k] for k in kept} | ({"amount": 0.0} if i % 50 == 0 else {})
            out.write(json.dumps(event) + "\n")
            if pattern is not None:
                labels.write(json.dumps({"scenario": "credit_card", "event_id": event["event_id"],
                                         "pattern": pattern}) + "\n")
    read, labelled = load_records(events, truth, "credit_card")
    assert not read.refused and len(read.records) == len(records)
    data = build_dataset("credit_card", config_for_records(read.records), read.records, labelled)
    entry = train_scenario("credit_card", PROFILES["smoke"], 3, tmp_path / "registry", latency_repeats=3,
                           data=data, models=("logreg", "hist_gbdt"))
    assert entry["models"]["hist_gbdt"]["pr_auc"] > 2 * entry["base_rate"]
    scorer = ModelScorer(tmp_path / "registry", ["credit_card"])
    scored = scorer.score_batch("credit_card", read.records[:5], data.X[:5], explain=False)
    assert scored.champion_scores.shape == (5,)
