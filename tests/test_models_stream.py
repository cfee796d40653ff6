"""Champion and shadow models in the real worker, through the real broker."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request

import jsonschema_rs
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bankguard.models.budget import SEVERITY_FLOORS, severity_of
from bankguard.models.dataset import QUICK
from bankguard.models.registry import default_dir, load_model
from bankguard.models.scoring import ModelScorer
from bankguard.producers.publisher import ScenarioPublisher
from bankguard.schema_files import ALERT_SCHEMA_PATH
from bankguard.settings import ModelSettings, settings_env
from conftest import start_worker
from kafka_helpers import scenario_ends, wait_committed
from scoring_helpers import worker_alerts

DAY_MS = 86_400_000


def per_model(metrics_url: str, family: str, sample: str) -> dict[tuple[str, str], float]:
    """One sample of a metric family per (scenario, model)."""
    with urllib.request.urlopen(metrics_url, timeout=5) as response:
        families = text_string_to_metric_families(response.read().decode())
    return {(s.labels["scenario"], s.labels["model"]): s.value for f in families
            if f.name == family for s in f.samples if s.name == sample}


def scored_per_model(metrics_url: str) -> dict[tuple[str, str], float]:
    """Observations of ``bankguard_model_score`` per (scenario, model)."""
    return per_model(metrics_url, "bankguard_model_score", "bankguard_model_score_count")


def test_champion_alerts_with_feature_evidence_and_shadows_scored(settings, tmp_path):
    settings = settings.model_copy(update={"models": ModelSettings(enabled=True, shadow_every=1)})
    worker = start_worker(settings, tmp_path / "worker.log")
    try:
        report = ScenarioPublisher(settings, ["credit_card", "atm_netbank"], rate=1_000, seed=8, speed=0).run(
            max_events=6_000)
        alerts = worker_alerts(settings, worker)
        scored = scored_per_model(worker.metrics_url)
    finally:
        worker.process.stop()
    scorer = ModelScorer(scenarios=["credit_card", "atm_netbank"])
    champions = {s: f"model:{scorer.champion(s)}" for s in scorer.scenarios}
    model_alerts = [a for a in alerts if a["detector"]["kind"] == "model"]
    assert model_alerts, "the champions raised no alert on traffic with injected patterns"
    schema = json.loads(ALERT_SCHEMA_PATH.read_text())
    for alert in model_alerts:
        jsonschema_rs.validate(schema, alert, validate_formats=True)
        assert alert["detector"]["id"] == champions[alert["scenario"]], "only champions alert"
        assert alert["evidence"]["top_features"], "model alerts name the features behind the score"
        assert alert["evidence"]["score"] >= alert["evidence"]["threshold"]
        # severity is the champion's calibrated risk, as its artifact maps the score
        calibration = load_model(default_dir(), alert["scenario"], alert["detector"]["id"][6:]).calibration
        risk = float(calibration(np.array([alert["evidence"]["score"]]))[0])  # from the rounded score
        assert alert["evidence"]["risk"] == pytest.approx(risk, abs=1e-3)
        near_a_floor = any(abs(risk - floor) < 1e-3 for floor, _ in SEVERITY_FLOORS)
        assert near_a_floor or alert["severity"] == severity_of(risk)
    # Every loaded model, champion and shadows, scored every event; the shadows never alerted.
    for scenario in scorer.scenarios:
        assert {model: scored.get((scenario, model)) for model in scorer.models(scenario)} == \
            dict.fromkeys(scorer.models(scenario), report.scenarios[scenario].produced)


def test_champion_score_drift_is_exported_and_stable_on_traffic_like_its_training_data(settings, tmp_path):
    """The shipped models were validated on generated traffic of 1,000 entities at 1,300 events a day,
    three weeks in; ten days of the same generator at that density (another seed) fill the windows the
    features read, so the champion's last scores must be distributed as on validation."""
    scenario = "credit_card"
    settings = settings.model_copy(update={
        "models": ModelSettings(enabled=True, shadows=False),
        "producer": settings.producer.model_copy(update={"entities_per_scenario": QUICK.n_entities})})
    worker = start_worker(settings, tmp_path / "worker.log")
    try:
        report = ScenarioPublisher(settings, [scenario], rate=QUICK.events_per_day * 1000 / DAY_MS, seed=8,
                                   speed=0).run(span_ms=10 * DAY_MS)
        wait_committed(settings, scenario_ends(settings), timeout_s=120, check=worker.assert_alive)
        scored = scored_per_model(worker.metrics_url)
        drift = per_model(worker.metrics_url, "bankguard_model_score_psi", "bankguard_model_score_psi")
    finally:
        worker.process.stop()
    champion = ModelScorer(scenarios=[scenario], shadows=False).champion(scenario)
    assert scored[(scenario, champion)] == report.scenarios[scenario].produced > settings.models.drift_window
    assert list(drift) == [(scenario, champion)], "only the champion, once it has scored enough"
    assert np.isfinite(drift[(scenario, champion)]) and 0 <= drift[(scenario, champion)] < 0.25, drift


def test_worker_refuses_a_tampered_artifact_in_one_line(settings, tmp_path):
    artifacts = tmp_path / "artifacts"
    shutil.copytree(default_dir(), artifacts)
    onnx = next(artifacts.glob("credit_card/*/model.onnx"))
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx.write_bytes(bytes(data))
    settings = settings.model_copy(update={"models": ModelSettings(enabled=True, dir=artifacts)})
    run = subprocess.run([sys.executable, "-m", "bankguard", "worker"], env=settings_env(settings),
                         capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    assert "sha256" in run.stderr and "credit_card" in run.stderr


def test_shadows_score_one_batch_in_n_and_the_champion_every_one():
    """What keeps shadow evaluation from costing the live traffic its latency."""
    from bankguard.stream_agents.metrics import WorkerMetrics
    from bankguard.stream_agents.model_stage import ModelStage
    from generated import traffic

    metrics = WorkerMetrics()
    scorer = ModelScorer(scenarios=["credit_card"])
    stage = ModelStage(scorer, metrics, drift_window=100, drift_min_scores=10, shadow_every=4)
    events = [dict(row.event, t_ms=row.timestamp_ms) for row in traffic("credit_card")[:50]]
    windows = {feature.name: np.zeros(len(events)) for feature in stage.features("credit_card")}
    sequences = [np.zeros(scorer.sequence_shape("credit_card"), dtype=np.float32) for _ in events]
    for _ in range(9):
        stage.score("credit_card", events, windows, sequences)
    runs = {sample.labels["model"]: sample.value for family in metrics.registry.collect()
            if family.name == "bankguard_model_inference_seconds" for sample in family.samples
            if sample.name.endswith("_count")}
    champion = scorer.champion("credit_card")
    assert runs[champion] == 9
    assert {model: count for model, count in runs.items() if model != champion} == \
        dict.fromkeys(set(scorer.models("credit_card")) - {champion}, 3)  # batches 0, 4 and 8
