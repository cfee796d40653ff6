"""Score drift: PSI of a champion's live scores against the validation bins its manifest keeps."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from pydantic import ValidationError

from bankguard.models.dataset import QUICK, build_dataset
from bankguard.models.drift import BINS, SHARE_FLOOR, ScoreReference, ScoreWindow, psi, score_reference
from bankguard.models.onnx_export import probabilities, session
from bankguard.models.registry import MODELS, SHIPPED, load_model
from bankguard.models.scoring import ModelScorer
from bankguard.scenarios import SCENARIOS
from bankguard.settings import ModelSettings


def champion_like(rng: np.random.Generator, n: int, spread: float = 0.5) -> np.ndarray:
    """Scores as a champion gives them: most events near 0, a thin tail of risky ones."""
    return rng.beta(spread, 30.0, n)


def window_psi(reference: ScoreReference, live: np.ndarray) -> float:
    window = ScoreWindow(reference, len(live), len(live))
    window.observe(live)
    value = window.psi()
    assert value is not None
    return value


@pytest.mark.parametrize("seed", range(5))
def test_the_same_distribution_is_stable(seed):
    rng = np.random.default_rng(seed)
    reference = score_reference(champion_like(rng, 8_000))
    assert len(reference.edges) == BINS - 1 and reference.shares == pytest.approx([0.1] * BINS, abs=1e-3)
    assert window_psi(reference, champion_like(rng, 3_000)) < 0.02


@pytest.mark.parametrize("seed", range(5))
def test_a_shifted_distribution_is_a_significant_shift(seed):
    rng = np.random.default_rng(seed)
    reference = score_reference(champion_like(rng, 8_000))
    assert window_psi(reference, champion_like(rng, 3_000, spread=1.0)) > 0.25


def test_tied_scores_merge_edges_and_leave_no_reference_bin_empty():
    # 60% tie at 0 and 15% at 1, as tree scores do: six deciles are one edge, and the decile at the
    # top score is dropped (no bin above it), so the ties at 1 share the last bin with the 5% below them
    scores = np.concatenate([np.zeros(6_000), np.linspace(0.01, 0.5, 2_500), np.ones(1_500)])
    reference = score_reference(np.random.default_rng(0).permutation(scores))
    assert len(reference.edges) == 3 and reference.edges[0] == 0.0 and np.all(np.diff(reference.edges) > 0)
    assert reference.edges[-1] < 1.0
    assert reference.shares == pytest.approx([0.6, 0.1, 0.1, 0.2])
    # Every live score in one bin, the others empty: large, finite, as the floor says.
    for live in (np.zeros(1_000), np.ones(1_000), np.full(1_000, 0.3)):
        value = window_psi(reference, live)
        assert np.isfinite(value) and value > 0.25
    floored = 0.5 * np.log(1.0 / 0.5) + (SHARE_FLOOR - 0.5) * np.log(SHARE_FLOOR / 0.5)
    assert psi([0.5, 0.5], [1.0, 0.0]) == pytest.approx(floored)


def test_one_distinct_score_or_none_is_one_bin():
    for scores in (np.full(500, 0.2), np.array([])):
        reference = score_reference(scores)
        assert reference.edges == () and reference.shares == (1.0,)
        assert window_psi(reference, np.random.default_rng(1).random(100)) == 0.0


def test_the_window_counts_exactly_the_last_scores():
    rng = np.random.default_rng(3)
    reference = score_reference(champion_like(rng, 5_000))
    window = ScoreWindow(reference, 500, 200)
    seen: list[np.ndarray] = []
    for size in (0, 1, 150, 30, 499, 500, 501, 1_700, 7, 260, 260, 3):
        batch = champion_like(rng, size, spread=rng.uniform(0.3, 1.0))
        window.observe(batch)
        seen.append(batch)
        last = np.concatenate(seen)[-500:]
        assert window.held == len(last)
        if len(last) < 200:
            assert window.psi() is None
            continue
        shares = np.bincount(reference.bins_of(last), minlength=len(reference.shares)) / len(last)
        assert window.psi() == pytest.approx(psi(reference.shares, shares), rel=1e-12)


def test_a_reference_round_trips_its_manifest_and_refuses_inconsistent_ones():
    reference = score_reference(champion_like(np.random.default_rng(4), 2_000))
    assert ScoreReference.from_manifest(reference.manifest()) == reference
    for edges, shares in (((0.2, 0.1), (0.3, 0.3, 0.4)), ((0.1, 0.1), (0.3, 0.3, 0.4)),
                          ((0.1,), (0.5, 0.6)), ((0.1,), (1.0,)), ((float("nan"),), (0.5, 0.5))):
        with pytest.raises(ValueError):
            ScoreReference(edges, shares)


def test_the_minimum_fits_in_the_window():
    with pytest.raises(ValidationError, match="drift_min_scores"):
        ModelSettings(drift_window=1_000, drift_min_scores=1_001)
    with pytest.raises(ValueError, match="minimum"):
        ScoreWindow(ScoreReference((), (1.0,)), 100, 101)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_shipped_manifests_hold_consistent_score_references(scenario):
    for model in MODELS:
        reference = load_model(SHIPPED, scenario, model).score_reference  # also checked at load
        edges, shares = np.asarray(reference.edges), np.asarray(reference.shares)
        assert len(shares) == len(edges) + 1 <= BINS, model
        assert np.all(np.diff(edges) > 0) and np.all((edges >= 0) & (edges <= 1)), model
        assert np.all(shares > 0) and shares.sum() == pytest.approx(1.0), model
    scorer = ModelScorer(SHIPPED, [scenario], shadows=False)
    assert scorer.score_reference(scenario) == load_model(SHIPPED, scenario, scorer.champion(scenario)).score_reference


def test_a_shipped_champion_holds_the_bins_of_its_validation_scores():
    scorer = ModelScorer(SHIPPED, ["credit_card"], shadows=False)
    champion = load_model(SHIPPED, "credit_card", scorer.champion("credit_card"))
    training = champion.manifest["training"]
    data = build_dataset("credit_card", replace(QUICK, seed=training["seed"]))
    assert data.data_hash == training["data_hash"], "the shipped artifacts were trained on other traffic; retrain them"
    val = data.split.val
    scores = probabilities(session(champion.onnx), data.X[val], data.seq[val] if champion.uses_sequences else None)
    rebuilt = score_reference(scores)
    assert rebuilt.edges == pytest.approx(champion.score_reference.edges, rel=1e-6)
    assert rebuilt.shares == pytest.approx(champion.score_reference.shares, abs=1e-3)
