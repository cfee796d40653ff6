"""The arena measures what the stream will deliver, as the literature measures it.

- the shipped report covers the generators as they are (its data hashes match freshly
  generated traffic), and no model reaches PR-AUC above 0.98 on its test period: a
  higher number would mean the traffic gives the label away;
- beside every champion, a no-context baseline (gradient boosting on the event's own
  fields alone) shows how much one event says without its history;
- features are evaluated as the stream serves them: without an outcomes feed the
  counterparty fraud rate is 0 in training and evaluation, as it is in the worker;
- two trainings with one seed, in separate processes, write identical artifacts and
  pick the same champion.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bankguard.models.arena import load_report
from bankguard.models.counterparty import CounterpartyRiskConfig
from bankguard.models.dataset import QUICK, build_dataset, data_hash, frame_of, generate_records
from bankguard.models.own_fields import own_fields
from bankguard.models.registry import MANIFEST, SHIPPED
from bankguard.models.train import PROFILES
from bankguard.scenarios import SCENARIOS

MAX_PR_AUC = 0.98
TIMING_KEYS = {"train_seconds", "latency_us_batch1", "latency_us_batch256", "seconds", "dataset_seconds"}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_no_model_reaches_a_giveaway_pr_auc_on_current_traffic(scenario):
    entry = load_report(SHIPPED)["scenarios"][scenario]
    config = replace(QUICK, seed=entry["seed"])
    records, patterns = generate_records(scenario, config)
    source = {"kind": "generator", "scenario": scenario}
    assert entry["data_hash"] == data_hash(frame_of(records, patterns), config, source), \
        f"{scenario}: the shipped arena was measured on other traffic; retrain the shipped artifacts"
    for model, measures in entry["models"].items():
        assert measures["pr_auc"] <= MAX_PR_AUC, f"{scenario}/{model}: PR-AUC {measures['pr_auc']:.3f}"
    assert entry["no_context_pr_auc"] <= MAX_PR_AUC


def test_the_champion_reads_context_the_no_context_baseline_cannot():
    """Across scenarios the champions beat the baseline that sees one event at a time."""
    report = load_report(SHIPPED)["scenarios"]
    gaps = [entry["models"][entry["champion"]]["pr_auc"] - entry["no_context_pr_auc"] for entry in report.values()]
    assert min(gaps) > -0.02 and np.median(gaps) > 0.2, gaps


def test_counterparty_rate_is_served_as_the_stream_serves_it():
    # wealth_product: a few hundred advisors as counterparties, so rates build up quickly
    small = replace(PROFILES["smoke"].data, days=9, events_per_day=600, n_entities=200, warmup_days=1,
                    val_days=2, gap_days=1, test_days=2,
                    counterparty=CounterpartyRiskConfig(delay_days=1, window_days=7))
    served = build_dataset("wealth_product", small)
    column = served.columns.index("cp_fraud_rate")
    assert not served.frame["cp_fraud_rate"].any() and not served.X[:, column].any()
    fed = build_dataset("wealth_product", replace(small, counterparty_outcomes=True))
    assert fed.frame["cp_fraud_rate"].max() > 0 and fed.X[:, column].max() > 0


def test_own_fields_keep_categories_and_numbers_and_drop_identifiers():
    frame = pd.DataFrame({
        "event_id": [f"e{i}" for i in range(200)], "entity_id": ["E"] * 200, "t_ms": np.arange(200) * 3_600_000,
        "amount": np.linspace(1, 200, 200), "pep": [True, False] * 100, "channel": ["web", None] * 100,
        "device_id": [f"D-{i}" for i in range(200)], "label": [0] * 200, "pattern": [None] * 200,
    })
    own = own_fields(frame)
    assert own.columns == ["amount", "channel", "pep", "hour_of_day", "day_of_week"]
    assert own.categorical.tolist() == [False, True, False, False, False]
    channel = own.X[:, 1]
    assert channel[0] == 0 and np.isnan(channel[1])
    assert own.X[:, 2].tolist()[:2] == [1.0, 0.0] and own.X[25, 3] == 1.0


TRAIN = """
import sys
from pathlib import Path
from bankguard.models.build import train_all
train_all(["credit_card"], Path(sys.argv[1]), "smoke", seed=5, k=10, forecast=False)
"""


def _artifacts(root: Path) -> dict[str, object]:
    out: dict[str, object] = {}
    for path in sorted((root / "credit_card").rglob("*")):
        if path.name == MANIFEST:
            manifest = json.loads(path.read_text())
            manifest["metrics"] = {k: v for k, v in manifest["metrics"].items() if k not in TIMING_KEYS}
            manifest["training"].pop("seconds")
            out[str(path.relative_to(root))] = manifest
        elif path.is_file():
            out[str(path.relative_to(root))] = path.read_bytes()
    return out


@pytest.mark.broker
def test_two_trainings_with_one_seed_give_identical_artifacts_and_champions(tmp_path):
    runs = []
    for i, hash_seed in enumerate(("1", "2")):  # separate processes: no shared state, other str hashes
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        runs.append(subprocess.Popen([sys.executable, "-c", TRAIN, str(tmp_path / f"run{i}")], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for run in runs:
        _, stderr = run.communicate(timeout=900)
        assert run.returncode == 0, stderr
    first, second = (_artifacts(tmp_path / f"run{i}") for i in (0, 1))
    assert first.keys() == second.keys() and any(key.endswith(".onnx") for key in first)
    for key in first:
        assert first[key] == second[key], key
    reports = [load_report(tmp_path / f"run{i}")["scenarios"]["credit_card"] for i in (0, 1)]
    assert reports[0]["champion"] == reports[1]["champion"]
    strip = [{k: v for k, v in r.items() if k not in TIMING_KEYS | {"models"}} for r in reports]
    assert strip[0] == strip[1]


def test_forecast_skill_is_measured_against_the_last_value_forecast():
    from bankguard.models.arena import arena_metrics

    report = {"forecast": {
        "credit_card": {"mae": {"1": 0.03, "5": 0.01}, "naive_last_value_mae": {"1": 0.02, "5": 0.02}},
        "aml_kyc": {"mae": {"1": 0.01}, "naive_last_value_mae": {"1": 0.0}},  # no baseline error: no skill
    }}
    skill = {(labels["scenario"], labels["horizon"]): value for name, labels, value in arena_metrics(report)
             if name == "bankguard_risk_forecast_skill"}
    assert skill == {("credit_card", "1"): pytest.approx(-0.5), ("credit_card", "5"): pytest.approx(0.5)}
