"""Backtests from files: hand-labelled precision and recall, A against B, warm-up, outputs, errors."""

from __future__ import annotations

import csv
import json
import os
import subprocess
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from pypdf import PdfReader

from bankguard.backtest.runner import Config, Source, run_backtest
from bankguard.event_files import RecordFileWriter, event_schema
from bankguard.rules.config import DEFAULT_CONFIG_PATH, load_rules, parse_rules
from bankguard.settings import Settings
from scoring_helpers import T0, event
from test_cli_errors import assert_one_line_error, bankguard

HOUR = timedelta(hours=1)
DEFAULT_RULES = DEFAULT_CONFIG_PATH


def lower_threshold_rules(tmp_path: Path, threshold: float = 20_000) -> Path:
    text = DEFAULT_RULES.read_text(encoding="utf-8")
    text = text.replace("amount_threshold: 50000", f"amount_threshold: {threshold:g}").replace(
        'version: "2026-11-21.1"', 'version: "lower-threshold"')
    path = tmp_path / "b.yaml"
    path.write_text(text, encoding="utf-8")
    assert parse_rules(text).large_amount.amount_threshold == threshold
    return path


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in records))
    return path


def truth_of(events: list[dict]) -> list[dict]:
    return [{"event_id": e["event_id"], "scenario": e["scenario"], "pattern": "hand_labelled", "label": 1}
            for e in events]


@pytest.fixture
def labelled(tmp_path):
    """Eight aml_kyc events, each on its own account, and which of them were fraud."""
    at = [HOUR * (i + 1) for i in range(8)]
    e = {
        "large_fraud": event("aml_kyc", "A1", at[0], amount=80_000.0),                    # A: large_amount TP
        "salary_fraud": event("aml_kyc", "A2", at[1], amount=60_000.0, memo="工资"),       # background: missed
        "goods_payment": event("aml_kyc", "A3", at[2], amount=120_000.0, memo="货款"),     # background: quiet
        "large_legit": event("aml_kyc", "A4", at[3], amount=70_000.0),                    # A: large_amount FP
        "gambling_fraud": event("aml_kyc", "A5", at[4], amount=1_000.0, memo="赌资"),      # keywords TP
        "mid_fraud": event("aml_kyc", "A6", at[5], amount=30_000.0),                      # only B flags it (TP)
        "mid_legit": event("aml_kyc", "A7", at[6], amount=25_000.0),                      # only B flags it (FP)
        "small": event("aml_kyc", "A8", at[7], amount=500.0),
    }
    fraud = [e[name] for name in ("large_fraud", "salary_fraud", "gambling_fraud", "mid_fraud")]
    events = write_jsonl(tmp_path / "events.jsonl", list(e.values()))
    truth = write_jsonl(tmp_path / "truth.jsonl", truth_of(fraud))
    return e, events, truth


def metrics(section: dict, detector: str) -> dict:
    return next(row for row in section["detectors"] if row["detector"] == detector)


def test_precision_and_recall_on_a_hand_labelled_case(labelled, tmp_path):
    e, events, truth = labelled
    run = run_backtest(Settings(), Source(path=events),
                       [Config("A", None, load_rules()),
                        Config("B", None, load_rules(lower_threshold_rules(tmp_path)))],
                       truth_source=Source(path=truth))
    a, b = run.report["configs"]["A"], run.report["configs"]["B"]
    assert run.report["events"] == 8 and run.report["truth"]["fraud_events"] == 4

    large_a = metrics(a, "rule:large_amount")
    assert (large_a["alerts"], large_a["tp"], large_a["fp"], large_a["fn"]) == (2, 1, 1, 3)
    assert (large_a["precision"], large_a["recall"]) == (0.5, 0.25)
    assert large_a["f1"] == pytest.approx(2 * 0.5 * 0.25 / 0.75)
    keywords = metrics(a, "rule:keywords")
    assert (keywords["alerts"], keywords["tp"], keywords["fp"], keywords["fn"]) == (1, 1, 0, 3)
    assert keywords["precision"] == 1.0
    # Overall counts events: large_fraud and gambling_fraud caught, large_legit a false alarm.
    overall = a["overall"]
    assert (overall["alerted_events"], overall["tp"], overall["fp"], overall["fn"]) == (3, 2, 1, 2)
    assert overall["precision"] == pytest.approx(2 / 3) and overall["recall"] == 0.5

    large_b = metrics(b, "rule:large_amount")
    assert (large_b["alerts"], large_b["tp"], large_b["fp"], large_b["fn"]) == (4, 2, 2, 2)
    assert b["rules_version"] == "lower-threshold"

    comparison = run.report["comparison"]
    assert (comparison["only_a"], comparison["only_b"], comparison["both"]) == (0, 2, 3)
    assert {x["event_id"] for x in comparison["examples"]["only_b"]} == {e["mid_fraud"]["event_id"],
                                                                         e["mid_legit"]["event_id"]}
    assert {x["event_id"]: x["fraud"] for x in comparison["examples"]["only_b"]} == {
        e["mid_fraud"]["event_id"]: True, e["mid_legit"]["event_id"]: False}


def test_without_truth_rates_are_not_made_up(labelled):
    _, events, _ = labelled
    run = run_backtest(Settings(), Source(path=events), [Config("A", None, load_rules())])
    overall = run.report["configs"]["A"]["overall"]
    assert overall["alerts"] == 3
    assert (overall["precision"], overall["recall"], overall["tp"]) == (None, None, None)


def test_warm_up_history_feeds_baselines_but_raises_no_alerts(tmp_path):
    start = T0 + timedelta(days=40)
    history = [event("aml_kyc", "W", timedelta(days=10 + 2 * i), amount=20_000.0, memo="工资") for i in range(9)]
    history.append(event("aml_kyc", "W", timedelta(days=30), amount=60_000.0))  # large, but before --from
    salary = event("aml_kyc", "W", timedelta(days=40, hours=2), amount=80_000.0, memo="工资")
    events = write_jsonl(tmp_path / "events.jsonl", [*history, salary])

    def alerts(warmup_days: float) -> list[dict]:
        run = run_backtest(Settings(), Source(path=events), [Config("A", None, load_rules())],
                           start_ms=int(start.timestamp() * 1000), end_ms=int((start + HOUR * 24).timestamp() * 1000),
                           warmup_days=warmup_days)
        assert run.report["events"] == 1
        return run.detections["A"].records()

    # With the history, 80,000 is 3.3x the 90-day mean of 24,000: an outlier despite its salary memo.
    [alert] = alerts(91)
    assert alert["event_id"] == salary["event_id"] and alert["severity"] == "medium"
    assert alert["evidence"]["history_count"] == 10 and alert["evidence"]["history_mean"] == 24_000.0
    # Without it the salary memo is a reasonable background and nothing fires.
    assert alerts(0) == []


def test_parquet_and_json_lines_files_give_the_same_alerts(labelled, tmp_path):
    _, events, _ = labelled
    records = [orjson.loads(line) for line in events.read_bytes().splitlines()]
    parquet = tmp_path / "events.parquet"
    writer = RecordFileWriter(parquet, event_schema())
    writer.write("aml_kyc", records)
    writer.close()
    config = [Config("A", None, load_rules())]
    from_json = run_backtest(Settings(), Source(path=events), config).detections["A"].alerts
    from_parquet = run_backtest(Settings(), Source(path=parquet), config).detections["A"].alerts
    assert len(from_json) == 3
    assert from_json.drop(columns=["evidence", "reasons"]).equals(from_parquet.drop(columns=["evidence", "reasons"]))
    assert from_json["evidence"].tolist() == from_parquet["evidence"].tolist()


@pytest.mark.broker  # runs a `bankguard` command
def test_a_day_from_the_producers_backtested_a_against_b_with_every_output(tmp_path):
    day = tmp_path / "day.parquet"
    # Models off for produce's investigations desk too, as for the backtest below (--no-models).
    produced = bankguard("produce", "--out", str(day), "--rate", "1.5", "--days", "1", "--start", "2026-11-20",
                         "--seed", "5", "--no-progress", timeout=120,
                         env=os.environ | {"BANKGUARD_MODELS__ENABLED": "false"})
    assert produced.returncode == 0, produced.stderr
    truth = tmp_path / "day.truth.parquet"
    assert truth.is_file()
    out = tmp_path / "report"
    out.mkdir()  # output directories are never created implicitly
    result = bankguard(
        "backtest", "--source", str(day), "--from", "2026-11-20", "--to", "2026-11-21", "--no-models",
        "--against", str(lower_threshold_rules(tmp_path)), "--truth", str(truth),
        "--json", str(out / "r.json"), "--csv", str(out / "r.csv"), "--pdf", str(out / "r.pdf"),
        "--alerts-csv", str(out / "alerts.csv"), "--events-csv", str(out / "events.csv"), timeout=120)
    assert result.returncode == 0, result.stderr
    assert "per detector" in result.stdout and "only in B" in result.stdout

    report = json.loads((out / "r.json").read_text(encoding="utf-8"))
    assert report["days"] == ["2026-11-20"]
    assert 120_000 < report["events"] < 140_000  # 1.5 events/s over 86,400 s, plus injected patterns
    assert report["truth"]["fraud_events"] > 0
    a, b = report["configs"]["A"], report["configs"]["B"]
    assert metrics(b, "rule:large_amount")["alerts"] > metrics(a, "rule:large_amount")["alerts"]
    assert report["comparison"]["only_b"] > 0 and report["comparison"]["only_a"] == 0
    assert 0 < a["overall"]["precision"] <= 1 and 0 < a["overall"]["recall"] <= 1

    with (out / "r.csv").open(encoding="utf-8") as rows:
        table = list(csv.DictReader(rows))
    assert {row["config"] for row in table} == {"A", "B"}
    assert {row["detector"] for row in table if row["config"] == "A"} >= {"*", "rule:large_amount"}
    with (out / "events.csv").open(encoding="utf-8") as rows:
        exported = list(csv.DictReader(rows))
    assert len(exported) == report["events"]
    assert sum(int(row["alerts"]) for row in exported) == a["overall"]["alerts"]
    with (out / "alerts.csv").open(encoding="utf-8") as rows:
        assert sum(1 for _ in csv.DictReader(rows)) == a["overall"]["alerts"]

    pdf = PdfReader(out / "r.pdf")
    assert len(pdf.pages) >= 2
    text = "".join(page.extract_text() for page in pdf.pages)
    assert "rule:large_amount" in text and "2026-11-20" in text
    pages = subprocess.run(["pdftoppm", "-r", "30", "-png", str(out / "r.pdf"), str(out / "page")],
                           capture_output=True, text=True)
    assert pages.returncode == 0, pages.stderr
    assert len(list(out.glob("page*.png"))) == len(pdf.pages)


@pytest.mark.broker  # runs a `bankguard` command
@pytest.mark.parametrize(("args", "needle"), [
    (["--source", "missing.parquet"], "no such file"),
    (["--source", "events.jsonl", "--from", "yesterday"], "--from"),
    (["--source", "events.jsonl", "--from", "2026-06-02", "--to", "2026-06-01"], "empty time range"),
    (["--source", "events.jsonl", "--from", "2027-01-01", "--to", "2027-01-02"], "no events"),
    (["--source", "events.jsonl", "--config", "missing.yaml"], "rules file not found"),
    (["--source", "notes.txt"], "unknown file type"),
    (["--source", "events.jsonl", "--truth", "truth.csv"], "unknown file type"),
    (["--source", "broken.jsonl"], "not a valid json event file"),
])
def test_backtest_mistakes_are_one_line(labelled, tmp_path, monkeypatch, args, needle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "broken.jsonl").write_text('{"event_id": "x", "amount": "lots"\n')
    assert_one_line_error(bankguard("backtest", "--no-models", *args), needle)


def test_each_scenario_champion_is_its_own_detector_in_the_report(tmp_path):
    from bankguard.models.scoring import ModelScorer
    from bankguard.producers.publisher import ScenarioPublisher

    scenarios = ["enterprise_loan", "forex_trading"]
    scorer = ModelScorer(scenarios=scenarios, shadows=False)
    assert scorer.champion("enterprise_loan") == scorer.champion("forex_trading"), "same kind of champion"
    path = tmp_path / "two.parquet"
    ScenarioPublisher(Settings(), scenarios, rate=20, seed=4, speed=0, out=path).run(max_events=6_000)
    run = run_backtest(Settings(), Source(path=path), [Config("A", None, load_rules())], models=scorer,
                       truth_source=Source(path=tmp_path / "two.truth.parquet"))
    rows = {row["detector"]: row for row in run.report["configs"]["A"]["detectors"] if row["kind"] == "model"}
    champion = f"model:{scorer.champion('enterprise_loan')}"
    assert set(rows) == {f"{champion} (enterprise_loan)", f"{champion} (forex_trading)"}
    assert {row["scenarios"][0] for row in rows.values()} == set(scenarios)
    assert rows[f"{champion} (enterprise_loan)"]["version"] != rows[f"{champion} (forex_trading)"]["version"]


def test_each_scenario_adds_its_detectors_up_and_models_count_against_their_budget(tmp_path):
    from bankguard.models.scoring import ModelScorer
    from bankguard.producers.publisher import ScenarioPublisher

    scenarios = ["credit_card", "atm_netbank"]
    scorer = ModelScorer(scenarios=scenarios, shadows=False)
    path = tmp_path / "two.parquet"
    ScenarioPublisher(Settings(), scenarios, rate=0.05, seed=6, speed=0, out=path).run(max_events=8_000)
    run = run_backtest(Settings(), Source(path=path), [Config("A", None, load_rules())], models=scorer,
                       truth_source=Source(path=tmp_path / "two.truth.parquet"))
    section = run.report["configs"]["A"]
    alerts = run.detections["A"].alerts
    assert len(run.report["days"]) >= 2, "the traffic spans several days, so budgets are counted per day"
    for scenario in scenarios:
        row = section["scenarios"][scenario]
        mine = alerts[alerts["scenario"] == scenario]
        frauds = len(run.truth.fraud[scenario])
        assert row["events"] == run.report["events_by_scenario"][scenario]
        assert row["alerts"] == len(mine) and row["alerted_events"] == mine["event_id"].nunique()
        assert row["tp"] + row["fp"] == row["alerted_events"] and row["tp"] + row["fn"] == frauds > 0
        assert row["precision"] == pytest.approx(row["tp"] / row["alerted_events"])
        assert row["truth_per_1000_events"] == pytest.approx(1000 * frauds / row["events"])
    models = [row for row in section["detectors"] if row["kind"] == "model"]
    assert {row["scenarios"][0] for row in models} == set(scenarios)
    for row in models:
        scenario = row["scenarios"][0]
        daily = run.detections["A"].scored_daily[scenario]
        assert sum(daily) == run.report["events_by_scenario"][scenario]
        assert row["budget_per_1000_events"] == scorer.budget(scenario)
        assert row["budget_per_day"] == pytest.approx([n * scorer.budget(scenario) / 1000 for n in daily])
        assert sum(row["alerts_by_day"]) == row["alerts"]
        pairs = zip(row["alerts_by_day"], row["budget_per_day"], strict=True)
        assert row["within_budget"] == all(alerts <= budget for alerts, budget in pairs)
    assert all("budget_per_day" not in row for row in section["detectors"] if row["kind"] == "rule")
