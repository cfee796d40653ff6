"""Models: which model is champion, how the challengers compare, do they agree?

Shows the offline arena metrics next to live behaviour (score distributions,
champion/shadow agreement, inference latency) and the risk forecast against what
then happened, so a promotion decision can be made from one screen.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.models.dashboard import DataTransformerConfig
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from ..panels import (RATE, SCENARIO, bucket_heatmap, graph, new_dashboard, organize, query,
                      query_variable, row, scenario_variable, table_panel)

UID = "bankguard-models"

MODEL = 'model=~"$model"'
_SKILL = f"max by (scenario, horizon) (bankguard_risk_forecast_skill{{{SCENARIO}}})"


def _arena_table():
    """One row per (scenario, model), one column per arena metric (pr_auc, f1, ...)."""
    return table_panel(
        "Model arena", [query(f"max by (scenario, model, metric) (bankguard_model_arena{{{SCENARIO}, {MODEL}}})",
                              "{{metric}}", instant=True)],
        width=24, description="Offline evaluation of every candidate on the same held-out data.",
        transformations=[
            DataTransformerConfig(id_val="labelsToFields", options={"mode": "columns", "valueLabel": "metric"}),
            DataTransformerConfig(id_val="merge", options={}),
            organize(order=("scenario", "model")),
        ])


def dashboard() -> Dashboard:
    score = f"bankguard_model_score_bucket{{{SCENARIO}, {MODEL}}}"
    return (
        new_dashboard(UID, "bankguard / Models",
                      "Arena metrics, champion, score distributions, agreement, latency, forecast vs actual.")
        .with_variable(scenario_variable())
        .with_variable(query_variable(
            "model", f"label_values(bankguard_model_score_bucket{{{SCENARIO}}}, model)", label="Model"))
        .with_row(row("Arena"))
        .with_panel(_arena_table())
        .with_panel(table_panel("Champions", [query(
            f"max by (scenario, model) (bankguard_model_champion_info{{{SCENARIO}}})",
            instant=True, fmt=PromQueryFormat.TABLE)], width=8,
            description="The model whose score drives alerts, per scenario; the others run in shadow.",
            transformations=[organize(exclude=("Time", "Value"), order=("scenario", "model"))]))
        .with_panel(graph("Champion vs shadow agreement", [query(
            f"avg by (scenario, model) (bankguard_model_agreement{{{SCENARIO}, {MODEL}}})",
            "{{scenario}} {{model}}")], unit="percentunit", max_val=1, width=16,
            description="Share of events where a shadow model takes the same decision as the champion."))
        .with_row(row("Scores"))
        .with_panel(bucket_heatmap(
            "Score distribution: $model",
            f"sum by (le) (increase({score}[{RATE}]))", unit="short", width=24,
            description="One heatmap per selected model, side by side: champion and shadows on the same scale.")
            .repeat("model").repeat_direction("h").max_per_row(3))
        .with_panel(graph("Score quantiles by model", [
            query(f"histogram_quantile(0.5, sum by (model, le) (rate({score}[{RATE}])))", "{{model}} p50"),
            query(f"histogram_quantile(0.95, sum by (model, le) (rate({score}[{RATE}])))", "{{model}} p95")],
            max_val=1, width=12))
        .with_panel(graph("Inference latency p99 by model", [query(
            f"histogram_quantile(0.99, sum by (model, le) (rate("
            f"bankguard_model_inference_seconds_bucket{{{MODEL}}}[{RATE}])))", "{{model}}")],
            unit="s", width=12))
        .with_row(row("Forecast"))
        .with_panel(graph("Risk forecast vs actual", [
            query(f"avg by (scenario, horizon) (bankguard_risk_forecast_ratio{{{SCENARIO}}})"
                  f" and on (scenario, horizon) ({_SKILL} > 0)", "forecast {{scenario}} +{{horizon}}"),
            query(f"avg by (scenario) (bankguard_high_risk_ratio{{{SCENARIO}}})", "actual {{scenario}}")],
            unit="percentunit", max_val=1, width=16, legend_table=True,
            description="A forecast made at t is for t + horizon: compare it with the actual line one horizon later. "
                        "Only forecasters that beat the last value on the arena's test windows are charted."))
        .with_panel(table_panel("Forecast skill against last value", [query(
            _SKILL, instant=True, fmt=PromQueryFormat.TABLE)], width=8,
            description="1 - the forecaster's error over the last-value forecast's on the arena's test windows. "
                        "At or below 0 it does not beat last value, and the chart leaves it out.",
            transformations=[organize(exclude=("Time",), rename={"Value": "skill"},
                                      order=("scenario", "horizon", "Value"))]))
    )
