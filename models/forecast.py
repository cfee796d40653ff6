"""Forecasting each scenario's high-risk ratio for the next 1, 5 and 15 minutes.

The series: per minute, the share of a scenario's events that are high risk. Training
labels it with the generators' ground truth over seeded traffic at a stream-like
rate; in the stream the worker feeds its own per-minute flagged ratio. The target for
horizon ``h`` is the *mean* ratio over the next ``h`` minutes (what an operator wants
to know: "will the next quarter hour be bad?"), not the single minute ``t+h``, which
is mostly noise.

A small LSTM reads the last ``WINDOW`` minutes. Backtested on the later part of the
series against two baselines a forecast must beat to be worth showing: the last
observed minute ("naive") and the mean of the window. Artifacts are ONNX plus a JSON
manifest with the sha256, like the arena's models.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bankguard.errors import BankguardError
from bankguard.features.spec import MINUTE_MS
from bankguard.models.registry import ArtifactError, library_versions, sha256

HORIZONS = (1, 5, 15)
WINDOW = 30
FORMAT_VERSION = 1
FOLDER = "forecast"


@dataclass(frozen=True)
class ForecastConfig:
    minutes: int = 2 * 1_440
    events_per_minute: int = 50
    n_entities: int = 2_000
    hidden: int = 16
    epochs: int = 6
    train_share: float = 0.7
    seed: int = 7


QUICK_FORECAST = ForecastConfig(minutes=1_440, events_per_minute=40, n_entities=1_000, epochs=4)


def minute_ratios(scenario: str, config: ForecastConfig) -> np.ndarray:
    """Per-minute share of pattern events in seeded generator traffic."""
    from bankguard.models.dataset import START_MS, make_generator

    generator = make_generator(scenario, config.seed + 1_000, config.n_entities)
    chunk = 60  # minutes per generate call
    total = np.zeros(config.minutes)
    risky = np.zeros(config.minutes)
    for first in range(0, config.minutes, chunk):
        start = START_MS + first * MINUTE_MS
        span = min(chunk, config.minutes - first)
        rows = generator.generate(start, start + span * MINUTE_MS, config.events_per_minute * span)
        minute = (np.array([r.timestamp_ms for r in rows], dtype=np.int64) - START_MS) // MINUTE_MS
        flag = np.array([r.pattern is not None for r in rows], dtype=np.float64)
        inside = minute < config.minutes
        np.add.at(total, minute[inside], 1.0)
        np.add.at(risky, minute[inside], flag[inside])
    return np.where(total > 0, risky / np.maximum(total, 1.0), 0.0)


def windows(series: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(inputs n x WINDOW, targets n x len(HORIZONS), index of each window's last minute)."""
    longest = max(HORIZONS)
    ends = np.arange(WINDOW - 1, len(series) - longest)
    X = np.stack([series[e - WINDOW + 1:e + 1] for e in ends]) if len(ends) else np.zeros((0, WINDOW))
    csum = np.concatenate(([0.0], np.cumsum(series)))
    Y = np.stack([(csum[ends + 1 + h] - csum[ends + 1]) / h for h in HORIZONS], axis=1) if len(ends) \
        else np.zeros((0, len(HORIZONS)))
    return X.astype(np.float32), Y.astype(np.float32), ends


def _module(hidden: int, scale: float) -> Any:
    import torch
    from torch import nn

    class RatioForecaster(nn.Module):
        """LSTM over the window (scaled inside) -> the mean ratio of each horizon."""

        scale: torch.Tensor  # a buffer, registered below

        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("scale", torch.tensor(float(scale)))
            self.lstm = nn.LSTM(1, hidden, batch_first=True)
            self.head = nn.Linear(hidden, len(HORIZONS))

        def forward(self, ratios: torch.Tensor) -> torch.Tensor:
            _, (h, _) = self.lstm(ratios.unsqueeze(-1) * self.scale)
            return nn.functional.softplus(self.head(h[-1])) / self.scale  # >= 0, never a dead unit

    return RatioForecaster()


def train_forecaster(series: np.ndarray, config: ForecastConfig) -> tuple[bytes, dict[str, Any]]:
    """Fit on the first ``train_share`` of the series, backtest on the rest; ONNX bytes + report."""
    import io
    import warnings

    import torch

    torch.manual_seed(config.seed)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        X, Y, ends = windows(series)
        cut = int(len(series) * config.train_share)
        train, test = ends + max(HORIZONS) < cut, ends >= cut
        scale = 1.0 / max(float(series[:cut].mean()), 1e-3)
        model = _module(config.hidden, scale)
        optimiser = torch.optim.Adam(model.parameters(), lr=5e-3)
        x_t, y_t = torch.from_numpy(X[train]), torch.from_numpy(Y[train])
        rng = np.random.default_rng(config.seed)
        started = time.perf_counter()
        model.train()
        for _ in range(config.epochs):
            order = torch.from_numpy(rng.permutation(len(x_t)))
            for first in range(0, len(order), 128):
                rows = order[first:first + 128]
                optimiser.zero_grad()
                loss = torch.nn.functional.l1_loss(model(x_t[rows]) * scale, y_t[rows] * scale)
                loss.backward()
                optimiser.step()
        seconds = time.perf_counter() - started
        model.eval()
        with torch.no_grad():
            predicted = model(torch.from_numpy(X[test])).numpy()
        truth = Y[test]
        naive = np.repeat(X[test][:, -1:], len(HORIZONS), axis=1)
        window_mean = np.repeat(X[test].mean(axis=1, keepdims=True), len(HORIZONS), axis=1)
        report = {
            "train_seconds": seconds,
            "test_windows": int(test.sum()),
            "mean_ratio": float(series.mean()),
            "mae": {str(h): float(np.mean(np.abs(predicted[:, i] - truth[:, i]))) for i, h in enumerate(HORIZONS)},
            "naive_last_value_mae": {str(h): float(np.mean(np.abs(naive[:, i] - truth[:, i])))
                                     for i, h in enumerate(HORIZONS)},
            "window_mean_mae": {str(h): float(np.mean(np.abs(window_mean[:, i] - truth[:, i])))
                                for i, h in enumerate(HORIZONS)},
        }
        buffer = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (torch.from_numpy(X[:2]),),
                              buffer,  # type: ignore[arg-type]  # torch takes a file object, though annotated for paths
                              input_names=["ratios"],
                              output_names=["forecast"], dynamic_axes={"ratios": {0: "n"}, "forecast": {0: "n"}},
                              opset_version=17, dynamo=False)
        return buffer.getvalue(), report
    finally:
        torch.set_num_threads(previous)


def build_forecasts(scenarios: Iterable[str], out: Path, config: ForecastConfig) -> dict[str, Any]:
    """Train and write every scenario's forecaster; returns the backtest per scenario."""
    results: dict[str, Any] = {}
    for scenario in scenarios:
        series = minute_ratios(scenario, config)
        onnx, report = train_forecaster(series, config)
        folder = out / FOLDER / scenario
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model.onnx").write_bytes(onnx)
        manifest = {"format_version": FORMAT_VERSION, "scenario": scenario, "artifact": "model.onnx",
                    "sha256": sha256(onnx), "window_minutes": WINDOW, "horizons_minutes": list(HORIZONS),
                    "target": "mean high-risk ratio over the next h minutes", "config": asdict(config),
                    "backtest": report, "library_versions": library_versions()}
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        results[scenario] = report
    return results


class Forecaster:
    """The worker's forecaster: feed each closed minute's ratio, get the next horizons.

    ``update(scenario, ratio)`` -> ``{1: f, 5: f, 15: f}`` (mean ratio expected over the
    next 1, 5, 15 minutes). Until ``WINDOW`` minutes are seen, the window is padded
    with the first ratio seen. Scenarios without an artifact raise ``KeyError``.
    """

    def __init__(self, root: Path | None = None, scenarios: Iterable[str] | None = None) -> None:
        from bankguard.models.onnx_export import session
        from bankguard.models.registry import default_dir

        base = (root or default_dir()) / FOLDER
        names = list(scenarios) if scenarios is not None else sorted(p.name for p in base.glob("*") if p.is_dir())
        if not names:
            raise BankguardError(f"no forecaster artifacts under {base}; run 'bankguard train'")
        self.sessions = {}
        for scenario in names:
            folder = base / scenario
            try:
                manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
                onnx = (folder / manifest["artifact"]).read_bytes()
            except (OSError, ValueError, KeyError) as exc:
                raise ArtifactError(f"forecast artifact {folder}: unreadable ({exc})") from None
            if sha256(onnx) != manifest.get("sha256"):
                raise ArtifactError(f"forecast artifact {folder}: sha256 of model.onnx does not match its manifest")
            if manifest.get("window_minutes") != WINDOW or manifest.get("horizons_minutes") != list(HORIZONS):
                raise ArtifactError(f"forecast artifact {folder}: window/horizons differ from the code's "
                                    f"({WINDOW} min, {list(HORIZONS)}); retrain")
            self.sessions[scenario] = session(onnx)
        self.history: dict[str, deque[float]] = {s: deque(maxlen=WINDOW) for s in self.sessions}

    def update(self, scenario: str, minute_ratio: float) -> dict[int, float]:
        history = self.history[scenario]
        history.append(float(minute_ratio))
        padded = [history[0]] * (WINDOW - len(history)) + list(history)
        out = self.sessions[scenario].run(["forecast"], {"ratios": np.asarray([padded], dtype=np.float32)})[0][0]
        return {h: float(min(max(v, 0.0), 1.0)) for h, v in zip(HORIZONS, out.tolist(), strict=True)}
