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
from bankguard.models.registry import default_dir, load_model
from bankguard.models.scoring import ModelScorer
from bankguard.producers.publisher import ScenarioPublisher
from bankguard.schema_files import ALERT_SCHEMA_PATH
from bankguard.settings import ModelSettings, settings_env
from conftest import start_worker
from scoring_helpers import worker_alerts


def scored_per_model(metrics_url: str) -> dict[tuple[str, str], float]:
    """Observations of ``bankguard_model_score`` per (scenario, model)."""
    with urllib.request.urlopen(metrics_url, timeout=5) as response:
        families = text_string_to_metric_families(response.read().decode())
    return {(s.labels["scenario"], s.labels["model"]): s.value for family in families
            if family.name == "bankguard_model_score" for s in family.samples if s.name.endswith("_count")}


def test_champion_alerts_with_feature_evidence_and_shadows_scored(settings, tmp_path):
    settings = settings.model_copy(update={"models": ModelSettings(enabled=True)})
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
