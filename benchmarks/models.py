"""Model arena benchmark: training time, inference latency and skill per scenario, as JSON.

Runs what ``bankguard train`` runs (the ``full`` profile by default) into a temporary
registry and prints, per scenario and model, training seconds, onnxruntime latency per
event at batch 1 and 256, PR-AUC against the scenario's base rate (target: the best
model at least 5x), and the LSTM against the best per-event model.

Two ablations say where the skill comes from (not part of ``bankguard train``):
- ``event_only_hist_gbdt``: gradient boosting on the event's own fields alone (every
  window feature and the counterparty rate blanked). High values mean a single event
  gives the pattern away; the generator, not context, is then doing the work.
- ``lstm_sequence_only``: the LSTM over the last events plus the event's own fields,
  without the window features: what the sequence alone adds over ``event_only``.
``first_event_share`` is the share of fraud events that are the first labelled event of
their entity in 24 h: no history, so no context or sequence model can see them.

    python benchmarks/models.py [--profile full|quick] [--scenarios all] [--seed 7] [--no-ablations]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from bankguard.features.spec import DAY_MS, SinceLast
from bankguard.models.arena import best_per_event
from bankguard.models.build import train_scenario
from bankguard.models.dataset import build_dataset, frame_of, generate_records, raw_column
from bankguard.models.features import model_matrix, scenario_features
from bankguard.models.forecast import QUICK_FORECAST, ForecastConfig, build_forecasts
from bankguard.models.lstm import train_lstm
from bankguard.models.metrics import pr_auc
from bankguard.models.train import PROFILES, fit_rows
from bankguard.scenarios import parse_scenarios

TARGET_RATIO = 5.0


def event_only_matrix(scenario: str, data, config) -> np.ndarray:
    """The model matrix with every window feature blanked (a cold entity) and no
    counterparty rate: only the event's own fields vary."""
    spec = scenario_features(scenario)
    records, patterns = generate_records(scenario, config)
    frame = frame_of(records, patterns)
    n = len(frame)
    windows = {f.name: (np.full(n, np.inf) if isinstance(f, SinceLast) else np.zeros(n)) for f in spec.windows}
    columns = {name: raw_column(frame, name) for name in spec.raw_fields}
    columns["t_ms"] = frame["t_ms"].to_numpy(np.int64)
    return model_matrix(spec, columns, windows, None)


def first_event_share(data) -> float:
    frame = data.frame.iloc[data.split.test]
    positives = frame[frame["label"] == 1].sort_values(["entity_id", "t_ms"])
    gap = positives.groupby("entity_id")["t_ms"].diff()
    return float((gap.isna() | (gap > DAY_MS)).mean()) if len(positives) else float("nan")


def ablations(scenario: str, data, profile, seed: int) -> dict[str, float]:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    X_event = event_only_matrix(scenario, data, data.config)
    rows = fit_rows(data.y, data.split.train, profile.max_fit_rows, seed)
    test = data.split.test
    with threadpool_limits(1):
        hgb = HistGradientBoostingClassifier(max_iter=profile.hgb_iter, learning_rate=0.08, random_state=seed)
        hgb.fit(X_event[rows], data.y[rows])
        event_only = pr_auc(data.y[test], hgb.predict_proba(X_event[test])[:, 1])
    net = train_lstm(data.seq[rows], X_event[rows], data.y[rows], seed, profile.lstm)
    import torch

    with torch.no_grad():
        scores = net(torch.from_numpy(data.seq[test]), torch.from_numpy(X_event[test])).numpy()
    return {"event_only_hist_gbdt": event_only, "lstm_sequence_only": pr_auc(data.y[test], scores)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="full")
    parser.add_argument("--scenarios", default="all")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--no-ablations", dest="ablations", action="store_false")
    args = parser.parse_args()
    scenarios = parse_scenarios(args.scenarios)
    profile = PROFILES[args.profile]
    out: dict = {"profile": profile.name, "seed": args.seed, "target_pr_auc_over_base_rate": TARGET_RATIO,
                 "scenarios": {}}
    train_seconds = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for scenario in scenarios:
            started = time.perf_counter()
            data = build_dataset(scenario, replace(profile.data, seed=args.seed))
            built = time.perf_counter() - started
            entry = train_scenario(scenario, profile, args.seed, root, args.k,
                                   latency_repeats=200 if profile.name == "full" else 30, data=data)
            train_seconds += built + entry["seconds"]
            models = entry["models"]
            champion = entry["champion"]
            best = models[champion]["pr_auc"]
            per_event_name, per_event = best_per_event(models)
            result = {
                "base_rate": entry["base_rate"],
                "test_rows": entry["test_rows"],
                "test_positives": entry["test_positives"],
                "champion": champion,
                "best_pr_auc": best,
                "best_pr_auc_over_base_rate": best / entry["base_rate"],
                "meets_target": best / entry["base_rate"] >= TARGET_RATIO,
                "lstm_pr_auc": models["lstm"]["pr_auc"],
                "best_per_event_model": per_event_name,
                "best_per_event_pr_auc": per_event,
                "lstm_beats_best_per_event": models["lstm"]["pr_auc"] > per_event,
                "order_only_patterns": entry["order_only"],  # a look-alike that differs only in order
                "first_event_share": first_event_share(data),
                "dataset_seconds": built,
                "models": {name: {key: round(float(m[key]), 6) for key in (
                    "pr_auc", "roc_auc", "recall_at_1pct_fpr", "f1", "accuracy", "cp_at_k",
                    "train_seconds", "latency_us_batch1", "latency_us_batch256")} for name, m in models.items()},
            }
            if args.ablations:
                result |= ablations(scenario, data, profile, args.seed)
            out["scenarios"][scenario] = result
            print(f"{scenario}: best {best:.3f} ({best / entry['base_rate']:.0f}x base), lstm "
                  f"{models['lstm']['pr_auc']:.3f} vs {per_event_name} {per_event:.3f}", file=sys.stderr)
        started = time.perf_counter()
        config: ForecastConfig = QUICK_FORECAST if profile.name == "quick" else ForecastConfig()
        out["forecast"] = build_forecasts(scenarios, root, replace(config, seed=args.seed))
        forecast_seconds = time.perf_counter() - started
    out["train_seconds_total"] = train_seconds + forecast_seconds
    out["forecast_seconds"] = forecast_seconds
    out["all_meet_target"] = all(s["meets_target"] for s in out["scenarios"].values())
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
