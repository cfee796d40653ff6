"""The model arena: every model of a scenario on the same held-out period, side by side.

Scores come from the exported ONNX artifacts (what the stream runs), on the test
period that training never saw. Latency is measured, not assumed: onnxruntime with
one thread, ``time.perf_counter`` around repeated runs, the median taken, reported per
event at batch 1 (one event at a time) and batch 256 (a Faust batch).

The report is JSON (``arena.json`` in the registry dir), a rich table for people
(``bankguard models report``) and Prometheus gauges for Grafana
(``bankguard_model_arena{scenario,model,metric}``, ``bankguard_model_champion_info``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from bankguard.errors import BankguardError
from bankguard.models.dataset import ScenarioDataset
from bankguard.models.metrics import evaluate
from bankguard.models.onnx_export import probabilities, session

REPORT = "arena.json"
REPORT_VERSION = 3  # 2: cp_at_k (caught entities left out), the no-context baseline; 3: the alert budget
TABLE_METRICS = ("pr_auc", "roc_auc", "recall_at_1pct_fpr", "f1", "accuracy", "precision_at_budget",
                 "recall_at_budget")


def score_test(onnx: bytes, data: ScenarioDataset, rows: np.ndarray | None = None) -> np.ndarray:
    """P(fraud) of the test rows (or ``rows``) from an exported model, in batches."""
    rows = data.split.test if rows is None else rows
    sess = session(onnx)
    chunks = np.array_split(rows, max(1, len(rows) // 8_192))
    out = [probabilities(sess, data.X[chunk], data.seq[chunk]) for chunk in chunks]
    return np.concatenate(out) if out else np.zeros(0)


def measure_latency(onnx: bytes, X: np.ndarray, seq: np.ndarray, batch: int, repeats: int) -> float:
    """Median seconds per event of one onnxruntime run over ``batch`` rows (1 thread)."""
    sess = session(onnx)
    take = np.arange(batch) % len(X)
    x, s = np.ascontiguousarray(X[take]), np.ascontiguousarray(seq[take])
    for _ in range(max(3, repeats // 10)):
        probabilities(sess, x, s)
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        probabilities(sess, x, s)
        timings.append(time.perf_counter() - started)
    return float(np.median(timings)) / batch


def evaluate_scores(scores: np.ndarray, threshold: float, data: ScenarioDataset, k: int = 10) -> dict[str, float]:
    """Every measure of test-period scores: PR-AUC (average precision), ROC-AUC, daily
    CP@k with caught entities left out, and the rest of :func:`evaluate`."""
    test = data.split.test
    y = data.y[test].astype(np.int64)
    return evaluate(y, scores, threshold, data.frame["entity_id"].to_numpy()[test],
                    data.frame["t_ms"].to_numpy()[test], k)


def evaluate_model(onnx: bytes, threshold: float, data: ScenarioDataset, k: int = 10,
                   latency_repeats: int = 200) -> dict[str, float]:
    """Held-out measures and latencies of one exported model."""
    test = data.split.test
    metrics = evaluate_scores(score_test(onnx, data), threshold, data, k)
    sample = test[: 1_024] if len(test) else np.arange(min(len(data.y), 1_024))
    X, seq = data.X[sample], data.seq[sample]
    metrics["latency_us_batch1"] = measure_latency(onnx, X, seq, 1, latency_repeats) * 1e6
    metrics["latency_us_batch256"] = measure_latency(onnx, X, seq, 256, max(10, latency_repeats // 10)) * 1e6
    return metrics


# -- the report ------------------------------------------------------------------------

def load_report(root: Path) -> dict[str, Any]:
    path = root / REPORT
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BankguardError(f"no arena report at {path}; run 'bankguard train' first") from None
    except (OSError, ValueError) as exc:
        raise BankguardError(f"unreadable arena report {path} ({exc})") from None


def write_report(root: Path, report: Mapping[str, Any]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / REPORT
    path.write_text(json.dumps(_finite(report), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _finite(value: Any) -> Any:
    """NaN/inf are not JSON: written as null."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def best_per_event(models: Mapping[str, Mapping[str, Any]]) -> tuple[str, float]:
    """The best PR-AUC among the per-event (non-sequence) models."""
    candidates = {name: m.get("pr_auc") or 0.0 for name, m in models.items() if name != "lstm"}
    name = max(candidates, key=lambda n: candidates[n])
    return name, float(candidates[name])


def sequence_verdicts(report: Mapping[str, Any]) -> list[str]:
    """One line per scenario whose risk has a legitimate look-alike differing only in order
    (``order_only``): the LSTM's held-out PR-AUC against the best per-event model's."""
    lines = []
    for scenario, entry in report.get("scenarios", {}).items():
        models = entry.get("models", {})
        if not entry.get("order_only") or "lstm" not in models:
            continue
        name, best = best_per_event(models)
        lstm = float(models["lstm"].get("pr_auc") or 0.0)
        verdict = "beats" if lstm > best else "does not beat"
        lines.append(f"{scenario}: the LSTM (PR-AUC {lstm:.3f}) {verdict} the best per-event model "
                     f"({name}, {best:.3f}) on a pattern told apart by order alone")
    return lines


def render_table(report: Mapping[str, Any]) -> Any:
    """A rich table: one row per scenario and model, the champion marked."""
    from rich.table import Table

    k = report.get("k", 10)
    table = Table(title=f"Model arena ({report.get('profile', '?')} profile, seed {report.get('seed', '?')})")
    for header in ("scenario", "model", "PR-AUC", "x base", "ROC-AUC", "recall@1%FPR", "F1", "accuracy",
                   "P@budget", "R@budget", f"CP@{k}", "train s", "µs/event b1", "µs/event b256"):
        table.add_column(header, justify="left" if header in ("scenario", "model") else "right")
    for scenario, entry in report.get("scenarios", {}).items():
        base = entry.get("base_rate") or float("nan")
        rows = [(f"[bold]{name} *[/bold]" if name == entry.get("champion") else name, m)
                for name, m in entry.get("models", {}).items()]
        rows.append(("[italic]no context[/italic]", entry.get("no_context") or {}))
        for i, (label, m) in enumerate(rows):
            pr = m.get("pr_auc")
            table.add_row(
                scenario if i == 0 else "", label,
                _fmt(pr), _fmt(pr / base if pr is not None and base else None, 1),
                *(_fmt(m.get(key)) for key in TABLE_METRICS[1:]), _fmt(m.get("cp_at_k")),
                _fmt(m.get("train_seconds"), 1), _fmt(m.get("latency_us_batch1"), 1),
                _fmt(m.get("latency_us_batch256"), 1),
                end_section=i == len(rows) - 1,
            )
    legend = ("* champion (best PR-AUC unless pinned); x base = PR-AUC / test base rate; "
              "no context = gradient boosting on the event's own fields alone; "
              f"P/R@budget = precision/recall at the threshold, at most {report.get('budget_per_1000_events', '?')} "
              "alerts per 1,000 validation events; "
              f"CP@{k} = daily entity precision at {k}, entities already caught left out")
    table.caption = "\n".join([legend, *sequence_verdicts(report)])
    return table


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


# -- Prometheus --------------------------------------------------------------------------

ARENA_METRICS = ("pr_auc", "roc_auc", "recall_at_1pct_fpr", "f1", "accuracy", "precision_at_budget",
                 "recall_at_budget", "alerts_per_1000_at_budget", "threshold", "train_seconds")


def arena_metrics(report: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, str], float]]:
    """``(name, labels, value)`` samples: ``bankguard_model_arena{scenario,model,metric}``
    (latencies in seconds, per the naming guide), ``bankguard_model_champion_info`` and
    ``bankguard_risk_forecast_skill{scenario,horizon}``: 1 - the forecaster's MAE over the
    last-value forecast's on the test windows, above 0 when it beats last-value (the
    dashboard charts only those)."""
    k = report.get("k", 10)
    for scenario, entry in report.get("scenarios", {}).items():
        for name, m in entry.get("models", {}).items():
            values = {key: m.get(key) for key in ARENA_METRICS}
            values[f"cp_at_{k}"] = m.get("cp_at_k")
            for batch in (1, 256):
                us = m.get(f"latency_us_batch{batch}")
                values[f"latency_batch{batch}_seconds"] = None if us is None else us / 1e6
            for metric, value in values.items():
                if isinstance(value, int | float) and math.isfinite(value):
                    yield "bankguard_model_arena", {"scenario": scenario, "model": name, "metric": metric}, float(value)
        baseline = entry.get("no_context_pr_auc")
        if isinstance(baseline, int | float) and math.isfinite(baseline):
            yield "bankguard_model_arena", {"scenario": scenario, "model": "no_context", "metric": "pr_auc"}, \
                float(baseline)
        if entry.get("champion"):
            yield "bankguard_model_champion_info", {"scenario": scenario, "model": entry["champion"]}, 1.0
    for scenario, forecast in (report.get("forecast") or {}).items():
        for horizon, mae in (forecast.get("mae") or {}).items():
            naive = (forecast.get("naive_last_value_mae") or {}).get(horizon)
            if isinstance(naive, int | float) and naive > 0 and isinstance(mae, int | float) and math.isfinite(mae):
                labels = {"scenario": scenario, "horizon": str(horizon)}
                yield "bankguard_risk_forecast_skill", labels, 1.0 - mae / naive


class ArenaCollector:
    """A prometheus_client collector serving the latest arena report of a registry dir.

    ``REGISTRY.register(ArenaCollector(path))``; the file is re-read at most every
    ``refresh_s`` seconds, so a retrain shows up without restarting the worker.
    """

    def __init__(self, root: Path, refresh_s: float = 60.0) -> None:
        self.root = root
        self.refresh_s = refresh_s
        self._loaded_at = -math.inf
        self._report: dict[str, Any] = {}

    def _report_now(self) -> Mapping[str, Any]:
        if time.monotonic() - self._loaded_at > self.refresh_s:
            try:
                self._report = load_report(self.root)
            except BankguardError:
                self._report = {}
            self._loaded_at = time.monotonic()
        return self._report

    def describe(self) -> Iterable[Any]:
        return []

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import GaugeMetricFamily

        arena = GaugeMetricFamily("bankguard_model_arena", "Held-out arena measures per scenario and model.",
                                  labels=["scenario", "model", "metric"])
        champion = GaugeMetricFamily("bankguard_model_champion_info", "The champion model of each scenario (1).",
                                     labels=["scenario", "model"])
        skill = GaugeMetricFamily("bankguard_risk_forecast_skill", "1 - the risk forecaster's MAE over the "
                                  "last-value forecast's on the arena's test windows (above 0: it beats last-value).",
                                  labels=["scenario", "horizon"])
        families = {family.name: family for family in (arena, champion, skill)}
        for name, labels, value in arena_metrics(self._report_now()):
            families[name].add_metric(list(labels.values()), value)
        yield from families.values()
