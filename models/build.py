"""``bankguard train`` end to end: data, six models, arena, artifacts, forecasters, report.

One scenario at a time (memory stays at one dataset), each scenario's artifacts
replaced as a whole so no stale model of an earlier run lingers beside new ones.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from bankguard.errors import BankguardError
from bankguard.models.budget import DEFAULT_BUDGET_PER_1000
from bankguard.models.arena import REPORT_VERSION, evaluate_model, evaluate_scores, load_report, write_report
from bankguard.models.dataset import (
    DEFAULT_SPLIT,
    ScenarioDataset,
    SplitDates,
    build_dataset,
    config_for_records,
    load_records,
    make_generator,
)
from bankguard.models.forecast import QUICK_FORECAST, ForecastConfig, build_forecasts
from bankguard.models.registry import choose_champion, pins, sequence_signature, write_model
from bankguard.models.sequences import SEQ_LEN, vector_width
from bankguard.models.train import MODELS, PROFILES, Profile, TrainedModel, fit_rows, no_context_scores, train_models

Progress = Callable[[str], None]


def _manifest(data: ScenarioDataset, model: TrainedModel, profile: Profile, seed: int,
              metrics: dict[str, float], reference: np.ndarray, fitted: int) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "kind": "lstm" if model.name == "lstm" else "sklearn",
        "inputs": {"input": [None, len(data.columns)]},
        "output": "probability of fraud per row",
        "threshold": model.threshold.value,
        "threshold_from": model.threshold.manifest(),
        "validation_f1": model.threshold.validation_f1,
        "calibration": model.calibration.manifest(),
        "score_reference": model.score_reference.manifest(),
        "metrics": metrics,
        "reference_row": [float(v) for v in reference],
        "training": {
            "profile": profile.name, "seed": seed, "seconds": model.train_seconds,
            "fit_rows": fitted,
            "train_rows": len(data.split.train), "validation_rows": len(data.split.val),
            "test_rows": len(data.split.test), "params": model.params,
            "export_max_abs_diff": model.export_max_abs_diff,
            "data_hash": data.data_hash, "data_config": asdict(data.config), "data_source": data.source,
        },
    }
    if model.name == "lstm":
        manifest["inputs"]["seq"] = [None, SEQ_LEN, vector_width(data.scenario)]
        manifest["sequence"] = sequence_signature(data.scenario)
    return manifest


def train_scenario(scenario: str, profile: Profile, seed: int, out: Path, k: int = 10,
                   pinned: str | None = None, latency_repeats: int = 200,
                   data: ScenarioDataset | None = None, models: tuple[str, ...] = MODELS,
                   budget: float = DEFAULT_BUDGET_PER_1000) -> dict[str, Any]:
    """Train, evaluate and write one scenario's models (all six unless ``models``
    says otherwise), thresholds within ``budget`` alerts per 1,000 events; return its
    arena entry."""
    started = time.perf_counter()
    data = data or build_dataset(scenario, replace(profile.data, seed=seed))
    built = time.perf_counter() - started
    trained = train_models(data, profile, seed, models, budget)
    reference = np.median(data.X[data.split.train], axis=0)
    fitted = len(fit_rows(data.y, data.split.train, profile.max_fit_rows, seed))  # the rows every model fitted
    results: dict[str, dict[str, Any]] = {}
    manifests: dict[str, dict[str, Any]] = {}
    for model in trained:
        metrics = evaluate_model(model.onnx, model.threshold.value, data, k, latency_repeats)
        metrics["train_seconds"] = model.train_seconds
        metrics["threshold"] = model.threshold.value
        results[model.name] = metrics
        manifests[model.name] = _manifest(data, model, profile, seed, metrics, reference, fitted)
    champion = choose_champion({name: manifests[name] for name in MODELS if name in manifests}, pinned)
    no_context = evaluate_scores(no_context_scores(data, profile, seed), 0.5, data, k)
    folder = out / scenario
    if folder.exists():
        shutil.rmtree(folder)
    for model in trained:
        write_model(out, scenario, model.name, model.onnx, manifests[model.name])
    test = data.split.test
    return {
        "base_rate": data.base_rate,
        "k": k,
        "budget_per_1000_events": budget,
        "no_context_pr_auc": no_context["pr_auc"],
        "no_context": {key: no_context[key] for key in ("pr_auc", "roc_auc", "cp_at_k")},
        "train_rows": len(data.split.train),
        "fit_rows": fitted,
        "validation_rows": len(data.split.val),
        "test_rows": len(test),
        "test_positives": int(data.y[test].sum()),
        "test_patterns": {str(k_): int(v) for k_, v in data.frame["pattern"].iloc[test].value_counts().items()},
        "champion": champion,
        "order_only": make_generator(scenario, seed, n_entities=10).order_only,
        "data_hash": data.data_hash,
        "dataset_seconds": built,
        "seconds": time.perf_counter() - started,
        "models": results,
    }


def _previous_report(out: Path, k: int, budget: float) -> dict[str, Any]:
    try:
        previous = load_report(out)
    except BankguardError:
        return {}
    same = (previous.get("format_version"), previous.get("k"), previous.get("budget_per_1000_events"))
    return previous if same == (REPORT_VERSION, k, budget) else {}


def recorded_dataset(scenario: str, events: Path, truth: Path, seed: int, dates: SplitDates = DEFAULT_SPLIT,
                     progress: Progress | None = None) -> ScenarioDataset:
    """A dataset from recorded traffic (events and truth, JSON lines or Parquet); records
    the worker would refuse are reported through ``progress`` and left out."""
    recorded, patterns = load_records(events, truth, scenario)
    if progress:
        progress(recorded.report())
    return build_dataset(scenario, config_for_records(recorded.records, seed, dates), recorded.records, patterns,
                         source={"kind": "recorded", "events": str(events), "truth": str(truth),
                                 "refused": len(recorded.refused)})


def train_all(scenarios: Sequence[str], out: Path, profile_name: str = "full", seed: int = 7, k: int = 10,
              forecast: bool = True, progress: Progress | None = None,
              recorded: tuple[Path, Path] | None = None,
              traffic: dict[str, int] | None = None,
              budget: float = DEFAULT_BUDGET_PER_1000, dates: SplitDates = DEFAULT_SPLIT,
              max_fit_rows: int | None = None) -> dict[str, Any]:
    """Every scenario's arena plus the forecasters; writes ``arena.json`` and returns it.

    ``recorded`` = (events JSONL, truth JSONL) trains on recorded traffic instead of the
    generators (the forecasters still learn from generated traffic). ``traffic`` overrides
    the profile's ``n_entities``/``events_per_day``: count and velocity features depend on
    how many events an entity sees per day, so train at the density the stream will see.
    ``budget`` caps every model's alerts per 1,000 validation events (its threshold);
    ``dates`` cut recorded traffic; ``max_fit_rows`` overrides the profile's fit sample."""
    profile = PROFILES[profile_name]
    if max_fit_rows is not None:
        profile = replace(profile, max_fit_rows=max_fit_rows)
    if traffic:  # match the stream's per-entity density: n_entities and/or events_per_day
        overrides: dict[str, Any] = dict(traffic)  # only int fields, which a ** of dict[str, int] does not say
        profile = replace(profile, data=replace(profile.data, **overrides))
    started = time.perf_counter()
    pinned = pins(out) if out.exists() else {}
    report: dict[str, Any] = {"format_version": REPORT_VERSION, "profile": profile.name, "seed": seed, "k": k,
                              "budget_per_1000_events": budget, "scenarios": {}}
    previous = _previous_report(out, k, budget)
    repeats = 200 if profile.name == "full" else 30
    for scenario in scenarios:
        data = recorded_dataset(scenario, recorded[0], recorded[1], seed, dates, progress) if recorded else None
        entry = train_scenario(scenario, profile, seed, out, k, pinned.get(scenario), repeats, data=data,
                               budget=budget)
        report["scenarios"][scenario] = entry | {"profile": profile.name, "seed": seed}
        if progress:
            best = entry["models"][entry["champion"]]
            progress(f"{scenario}: champion {entry['champion']} PR-AUC {best['pr_auc']:.3f} "
                     f"(base rate {entry['base_rate']:.4f}) in {entry['seconds']:.1f}s; fit on "
                     f"{entry['fit_rows']:,} of {entry['train_rows']:,} training rows (every fraud, legitimate "
                     f"ones sampled to --max-fit-rows {profile.max_fit_rows:,}), {entry['validation_rows']:,} "
                     f"validation and {entry['test_rows']:,} test rows")
    if forecast:
        config: ForecastConfig = QUICK_FORECAST if profile.name == "quick" else ForecastConfig()
        config = replace(config, seed=seed)
        forecast_started = time.perf_counter()
        report["forecast"] = build_forecasts(scenarios, out, config)
        if progress:
            seconds = time.perf_counter() - forecast_started
            progress(f"forecasters: {len(report['forecast'])} scenarios in {seconds:.1f}s")
    report["total_seconds"] = time.perf_counter() - started
    # A partial run (--scenarios) keeps the other scenarios' entries of the last report.
    kept = {s: e for s, e in previous.get("scenarios", {}).items() if s not in report["scenarios"]}
    report["scenarios"] = {**kept, **report["scenarios"]}
    if "forecast" in previous:
        report["forecast"] = {**previous["forecast"], **report.get("forecast", {})}
    write_report(out, report)
    return report
