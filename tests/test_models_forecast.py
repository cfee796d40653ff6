"""The high-risk ratio forecaster: targets, a backtest that beats the naive forecast,
and artifacts that are verified like the arena's."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bankguard.errors import BankguardError
from bankguard.models.forecast import (
    HORIZONS,
    WINDOW,
    ForecastConfig,
    Forecaster,
    build_forecasts,
    train_forecaster,
    windows,
)
from bankguard.models.registry import ArtifactError

# The tests that train torch models share one process, so only one of them imports torch.
pytestmark = pytest.mark.xdist_group("torch")


def test_targets_are_the_mean_ratio_over_each_horizon():
    series = np.arange(100, dtype=np.float64) / 100
    X, Y, ends = windows(series)
    assert X.shape == (len(ends), WINDOW) and Y.shape == (len(ends), len(HORIZONS))
    e = ends[3]
    np.testing.assert_allclose(X[3], series[e - WINDOW + 1:e + 1], rtol=1e-6)
    for i, h in enumerate(HORIZONS):
        assert Y[3, i] == pytest.approx(series[e + 1:e + 1 + h].mean(), rel=1e-6)


def regime_series(minutes: int, seed: int) -> np.ndarray:
    """Quiet minutes around 1%, with bursts of ~30 minutes near 10%, plus noise."""
    rng = np.random.default_rng(seed)
    level = np.full(minutes, 0.01)
    for start in rng.integers(0, minutes - 30, minutes // 150):
        level[start:start + 30] = 0.10
    return np.clip(level + rng.normal(0, 0.01, minutes), 0, 1)


def test_backtest_beats_the_naive_forecast_on_a_persistent_series():
    config = ForecastConfig(minutes=1_500, epochs=10, seed=1)
    _, report = train_forecaster(regime_series(config.minutes, 1), config)
    for h in ("5", "15"):
        assert report["mae"][h] < report["naive_last_value_mae"][h]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("forecast")
    config = ForecastConfig(minutes=400, events_per_minute=10, n_entities=100, epochs=1, seed=2)
    report = build_forecasts(["insurance_claims"], root, config)
    return root, report


def test_forecaster_answers_from_the_first_minute(trained):
    root, report = trained
    assert set(report["insurance_claims"]["mae"]) == {str(h) for h in HORIZONS}
    forecaster = Forecaster(root)
    first = forecaster.update("insurance_claims", 0.05)
    assert set(first) == set(HORIZONS) and all(0.0 <= v <= 1.0 for v in first.values())
    for _ in range(WINDOW + 5):
        forecaster.update("insurance_claims", 0.0)
    assert len(forecaster.history["insurance_claims"]) == WINDOW


def test_tampered_forecast_artifact_is_refused(trained, tmp_path):
    root, _ = trained
    folder = root / "forecast" / "insurance_claims"
    copy = tmp_path / "forecast" / "insurance_claims"
    copy.mkdir(parents=True)
    (copy / "manifest.json").write_text((folder / "manifest.json").read_text())
    data = bytearray((folder / "model.onnx").read_bytes())
    data[-10] ^= 0xFF
    (copy / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="sha256"):
        Forecaster(tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["window_minutes"] = WINDOW + 1
    (copy / "model.onnx").write_bytes((folder / "model.onnx").read_bytes())
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="window/horizons"):
        Forecaster(tmp_path)


def test_no_forecasters_is_a_clear_error(tmp_path):
    with pytest.raises(BankguardError, match="no forecaster artifacts"):
        Forecaster(tmp_path)
