"""The artifacts committed in ``models/artifacts`` load, match the code and stay small,
so ``bankguard up`` scores with models on a fresh clone without training first."""

from __future__ import annotations

import numpy as np
import pytest

from bankguard.models.arena import best_per_event, load_report, sequence_verdicts
from bankguard.models.dataset import make_generator
from bankguard.models.features import scenario_features, window_features
from bankguard.models.forecast import HORIZONS, Forecaster
from bankguard.models.registry import SHIPPED, list_models, load_model
from bankguard.models.scoring import ModelScorer
from bankguard.models.sequences import SEQ_LEN, vector_width
from bankguard.models.registry import MODELS
from bankguard.scenarios import SCENARIOS

MAX_TOTAL_BYTES = 5 * 1024 * 1024


def test_every_scenario_ships_six_verified_models():
    assert list_models(SHIPPED) == {scenario: sorted(MODELS) for scenario in SCENARIOS}
    for scenario in SCENARIOS:
        for model in MODELS:
            manifest = load_model(SHIPPED, scenario, model).manifest  # sha256 and feature spec checked
            assert manifest["training"]["profile"] == "quick" and manifest["training"]["seed"] == 7


def test_shipped_artifacts_are_small():
    total = sum(path.stat().st_size for path in SHIPPED.rglob("*") if path.is_file())
    assert total < MAX_TOTAL_BYTES, f"{total / 1e6:.1f} MB shipped"


def test_shipped_report_names_the_champions_the_scorer_uses():
    report = load_report(SHIPPED)
    scorer = ModelScorer(SHIPPED)
    assert sorted(scorer.scenarios) == sorted(SCENARIOS)
    for scenario in SCENARIOS:
        assert report["scenarios"][scenario]["champion"] == scorer.champion(scenario)


@pytest.mark.parametrize("scenario", ["credit_card", "aml_kyc"])
def test_shipped_models_score_a_cold_start_event(scenario):
    scorer = ModelScorer(SHIPPED, [scenario])
    spec = scenario_features(scenario)
    features = [{f.name: 0.0 for f in window_features(scenario)} | {"m_since_prev": float("inf")}]
    event = {"scenario": scenario, "entity_id": "X-1", "t_ms": 1_790_000_000_000, "amount": 120.0,
             "direction": "out", "channel": "card", "currency": "CNY", "source_country": "CN",
             "destination_country": "CN", "pep": False, "transaction_type": "purchase",
             "device_type": "mobile", "merchant_category": "5411", "country": "CN"}
    sequences = np.zeros((1, SEQ_LEN, vector_width(scenario)), dtype=np.float32)
    result = scorer.score_batch(scenario, [event], features, sequences)
    assert set(result.scores) == set(MODELS)
    assert all(0.0 <= float(s[0]) <= 1.0 for s in result.scores.values())
    assert scorer.matrix(scenario, [event], features).shape == (1, len(spec.columns))


def test_shipped_forecasters_answer_every_horizon():
    forecaster = Forecaster(SHIPPED)
    assert sorted(forecaster.sessions) == sorted(SCENARIOS)
    for ratio in (0.01, 0.02, 0.5):
        out = forecaster.update("cyber_security", ratio)
    assert set(out) == set(HORIZONS) and all(0.0 <= v <= 1.0 for v in out.values())


def test_shipped_lstm_beats_every_per_event_model_where_only_order_tells_risk():
    report = load_report(SHIPPED)
    order_only = [s for s in SCENARIOS if make_generator(s, 7, n_entities=10).order_only]
    assert order_only, "a scenario's risk pattern has a look-alike that differs only in order"
    for scenario in order_only:
        entry = report["scenarios"][scenario]
        assert entry["order_only"]
        name, best = best_per_event(entry["models"])
        assert entry["models"]["lstm"]["pr_auc"] > best, f"{scenario}: lstm vs {name}"
    verdicts = sequence_verdicts(report)
    assert len(verdicts) == len(order_only) and all(" beats " in line for line in verdicts)
