"""A backtest over the topics yields exactly the alerts the stream worker raised (same ids)."""

from __future__ import annotations

import math


from bankguard.backtest.runner import Config, resolve_source, run_backtest
from bankguard.models.scoring import ModelScorer
from bankguard.producers.publisher import ScenarioPublisher
from bankguard.rules.config import load_rules
from bankguard.scenarios import SCENARIOS
from bankguard.settings import ModelSettings
from conftest import start_worker
from scoring_helpers import worker_alerts

COMPARED = ("scenario", "event_id", "entity_id", "event_time", "severity", "rules_config_version", "reasons")


def test_backtest_over_topics_matches_the_stream_worker(settings, tmp_path):
    settings = settings.model_copy(update={"models": ModelSettings(enabled=True, shadows=False)})
    worker = start_worker(settings, tmp_path / "worker.log")
    try:
        report = ScenarioPublisher(settings, list(SCENARIOS), rate=2_000, seed=12, speed=0).run(max_events=9_000)
        streamed = {alert["alert_id"]: alert for alert in worker_alerts(settings, worker, timeout_s=120)}
    finally:
        worker.process.stop()

    run = run_backtest(settings, resolve_source("kafka", settings), [Config("A", None, load_rules())],
                       models=ModelScorer(shadows=False))
    backtested = {row["alert_id"]: row for row in run.detections["A"].records()}

    assert run.report["events"] == report.produced
    assert {a["detector"]["kind"] for a in streamed.values()} == {"rule", "model"}, "both kinds of detector ran"
    assert set(backtested) == set(streamed), (
        f"only in the stream: {sorted(set(streamed) - set(backtested))[:5]}, "
        f"only in the backtest: {sorted(set(backtested) - set(streamed))[:5]}")
    for alert_id, alert in streamed.items():
        mine = backtested[alert_id]
        assert {k: alert[k] for k in COMPARED} == {k: mine[k] for k in COMPARED}, alert_id
        assert (alert["detector"]["id"], str(alert["detector"]["version"])) == (
            mine["detector"] if mine["kind"] == "model" else mine["detector"].removeprefix("rule:"), mine["version"])
        assert math.isclose(alert["score"], mine["score"], abs_tol=1e-6)
        if alert["detector"]["kind"] == "rule":
            assert alert["evidence"] == mine["evidence"], alert_id
