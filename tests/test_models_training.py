"""Training is reproducible under a seed, and the scorer gives the worker consistent scores."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bankguard.models.arena import arena_metrics, score_test
from bankguard.models.build import train_scenario
from bankguard.models.dataset import build_dataset
from bankguard.models.drift import score_reference
from bankguard.models.onnx_export import probabilities, session
from bankguard.models.registry import MANIFEST, load_model
from bankguard.models.scoring import ModelScorer
from bankguard.models.train import MODELS, PROFILES

# The tests that train torch models share one process, so only one of them imports torch.
pytestmark = pytest.mark.xdist_group("torch")

SCENARIO = "atm_netbank"
SMOKE = PROFILES["smoke"]
TIMING_KEYS = {"train_seconds", "latency_us_batch1", "latency_us_batch256"}


@pytest.fixture(scope="module")
def dataset():
    return build_dataset(SCENARIO, replace(SMOKE.data, seed=3))


@pytest.fixture(scope="module")
def registry(tmp_path_factory, dataset) -> Path:
    root = tmp_path_factory.mktemp("registry")
    train_scenario(SCENARIO, SMOKE, 3, root, latency_repeats=5, data=dataset)
    return root


def _measures(entry: dict) -> dict:
    return {model: {k: v for k, v in m.items() if k not in TIMING_KEYS} for model, m in entry["models"].items()}


def test_same_seed_same_models_and_scores(tmp_path, dataset, registry):
    again = train_scenario(SCENARIO, SMOKE, 3, tmp_path, latency_repeats=5,
                           data=build_dataset(SCENARIO, replace(SMOKE.data, seed=3)))
    first = {m: json.loads((registry / SCENARIO / m / MANIFEST).read_text()) for m in MODELS}
    for model in MODELS:
        a = load_model(registry, SCENARIO, model)
        b = load_model(tmp_path, SCENARIO, model)
        np.testing.assert_array_equal(score_test(a.onnx, dataset), score_test(b.onnx, dataset), err_msg=model)
        assert a.threshold == b.threshold, model
        assert first[model]["training"]["data_hash"] == b.manifest["training"]["data_hash"]
        assert {k: v for k, v in first[model]["metrics"].items() if k not in TIMING_KEYS} == \
            {k: v for k, v in b.manifest["metrics"].items() if k not in TIMING_KEYS}, model
    assert set(_measures(again)) == set(MODELS)


def test_another_seed_gives_other_data():
    a = build_dataset(SCENARIO, replace(SMOKE.data, seed=3, days=8, test_days=2, val_days=2, warmup_days=0))
    b = build_dataset(SCENARIO, replace(SMOKE.data, seed=4, days=8, test_days=2, val_days=2, warmup_days=0))
    assert a.data_hash != b.data_hash


def test_exported_models_beat_the_base_rate(registry, dataset):
    for model in MODELS:
        manifest = load_model(registry, SCENARIO, model).manifest
        assert manifest["metrics"]["pr_auc"] > 3 * dataset.base_rate, model
        assert manifest["training"]["export_max_abs_diff"] <= 1e-4


def test_manifests_hold_the_bins_of_the_validation_scores(registry, dataset):
    val = dataset.split.val
    for model in MODELS:
        loaded = load_model(registry, SCENARIO, model)
        seq = dataset.seq[val] if loaded.uses_sequences else None
        scores = probabilities(session(loaded.onnx), dataset.X[val], seq)
        assert loaded.score_reference == score_reference(scores), model


def test_batch_and_single_event_scores_are_identical(registry, dataset):
    scorer = ModelScorer(registry, [SCENARIO])
    rows = dataset.split.test[:300]
    X, seq = dataset.X[rows], dataset.seq[rows]
    batch = scorer.score_batch(SCENARIO, [{}] * len(rows), X, seq, explain=False)
    assert set(batch.scores) == set(MODELS) and set(batch.seconds) == set(MODELS)
    assert all(seconds > 0 for seconds in batch.seconds.values())
    for model, scores in batch.scores.items():
        single = np.concatenate([scorer.score_batch(SCENARIO, [{}], X[i:i + 1], seq[i:i + 1], explain=False)
                                 .scores[model] for i in range(len(rows))])
        np.testing.assert_allclose(scores, single, rtol=0, atol=1e-6, err_msg=model)


def test_champion_hits_come_with_their_top_features(registry, dataset):
    scorer = ModelScorer(registry, [SCENARIO])
    rows = dataset.split.test
    result = scorer.score_batch(SCENARIO, [{}] * len(rows), dataset.X[rows], dataset.seq[rows])
    champion = result.champion
    flagged = np.flatnonzero(result.scores[champion] >= result.thresholds[champion])
    assert [hit.row for hit in result.hits] == flagged.tolist() and flagged.size
    hit = result.hits[0]
    assert hit.model == champion and hit.score >= hit.threshold and len(hit.version) == 12
    assert 0 < len(hit.reasons) <= 3
    assert all(r.feature in dataset.columns and r.delta > 0 for r in hit.reasons)
    assert [r.delta for r in hit.reasons] == sorted((r.delta for r in hit.reasons), reverse=True)


def test_scorer_with_only_the_champion(registry, dataset):
    scorer = ModelScorer(registry, [SCENARIO], shadows=False)
    rows = dataset.split.test[:10]
    result = scorer.score_batch(SCENARIO, [{}] * 10, dataset.X[rows], dataset.seq[rows], explain=False)
    assert list(result.scores) == [scorer.champion(SCENARIO)]


def test_scorer_refuses_a_batch_of_the_wrong_shape(registry, dataset):
    scorer = ModelScorer(registry, [SCENARIO])
    with pytest.raises(ValueError, match="columns"):
        scorer.score_batch(SCENARIO, [{}], dataset.X[:1, :-1], dataset.seq[:1])
    with pytest.raises(ValueError, match="sequences"):
        scorer.score_batch(SCENARIO, [{}], dataset.X[:1], None)


def test_arena_gauges_cover_every_model(registry):
    entry = {"champion": "hist_gbdt", "models": {}}
    for model in MODELS:
        entry["models"][model] = load_model(registry, SCENARIO, model).manifest["metrics"]
    samples = list(arena_metrics({"k": 10, "scenarios": {SCENARIO: entry}}))
    arena = [(labels["model"], labels["metric"]) for name, labels, _ in samples if name == "bankguard_model_arena"]
    assert {("lstm", "pr_auc"), ("logreg", "latency_batch1_seconds"), ("mlp", "cp_at_10")} <= set(arena)
    champions = [labels for name, labels, value in samples if name == "bankguard_model_champion_info"]
    assert champions == [{"scenario": SCENARIO, "model": "hist_gbdt"}]
