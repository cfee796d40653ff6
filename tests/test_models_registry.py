"""The registry refuses tampered and out-of-date artifacts with one clear line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from bankguard.features.spec import DAY_MS, WindowFeature
from bankguard.models import features as model_features
from bankguard.models.build import train_scenario
from bankguard.models.registry import ARTIFACT, MANIFEST, ArtifactError, choose_champion, load_model, pins
from bankguard.models.scoring import ModelScorer
from bankguard.models.train import PROFILES

# Its registry fixture trains an LSTM: with the other torch tests, in one process.
pytestmark = pytest.mark.xdist_group("torch")

SCENARIO = "cyber_security"
MODELS = ("logreg", "hist_gbdt", "lstm")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("trained")
    train_scenario(SCENARIO, PROFILES["smoke"], 5, root, latency_repeats=3, models=MODELS)
    return root


@pytest.fixture
def registry(trained, tmp_path) -> Path:
    """A private copy each test may damage."""
    shutil.copytree(trained, tmp_path / "r")
    return tmp_path / "r"


def one_line(error: Exception) -> str:
    text = str(error)
    assert "\n" not in text
    return text


def test_intact_artifacts_load(registry):
    for model in MODELS:
        loaded = load_model(registry, SCENARIO, model)
        assert loaded.manifest["features"] == model_features.feature_signature(SCENARIO)
        assert loaded.uses_sequences == (model == "lstm")
    assert ModelScorer(registry, [SCENARIO]).models(SCENARIO) == list(MODELS)


def test_a_flipped_byte_is_refused(registry):
    path = registry / SCENARIO / "hist_gbdt" / ARTIFACT
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError) as caught:
        load_model(registry, SCENARIO, "hist_gbdt")
    message = one_line(caught.value)
    assert str(path.parent) in message and "sha256" in message and "modified or corrupt" in message
    with pytest.raises(ArtifactError, match="sha256"):
        ModelScorer(registry, [SCENARIO])


def test_a_manifest_with_another_feature_list_is_refused(registry):
    path = registry / SCENARIO / "logreg" / MANIFEST
    manifest = json.loads(path.read_text())
    manifest["features"]["columns"][3] = "renamed_column"
    path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError) as caught:
        load_model(registry, SCENARIO, "logreg")
    message = one_line(caught.value)
    assert str(path.parent) in message and "features.columns.3" in message and "renamed_column" in message


def test_a_changed_feature_spec_in_the_code_refuses_old_artifacts(registry, monkeypatch):
    spec = model_features.SPECS[SCENARIO]
    extra = WindowFeature("m_extra_7d", "count", DAY_MS, 7)
    monkeypatch.setitem(model_features.SPECS, SCENARIO, replace(spec, windows=(*spec.windows, extra)))
    with pytest.raises(ArtifactError) as caught:
        load_model(registry, SCENARIO, "logreg")
    message = one_line(caught.value)
    assert "other features than the code's cyber_security spec" in message and "retrain" in message


def test_a_manifest_without_a_valid_score_reference_is_refused(registry):
    path = registry / SCENARIO / "hist_gbdt" / MANIFEST
    manifest = json.loads(path.read_text())
    reference = manifest.pop("score_reference")
    path.write_text(json.dumps(manifest | {"format_version": 2}))  # as artifacts from before the field
    with pytest.raises(ArtifactError, match="format version 2, this code reads 3; retrain"):
        load_model(registry, SCENARIO, "hist_gbdt")
    path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError) as caught:
        load_model(registry, SCENARIO, "hist_gbdt")
    message = one_line(caught.value)
    assert str(path.parent) in message and "no score_reference" in message and "retrain" in message
    path.write_text(json.dumps(manifest | {"score_reference": reference | {"shares": reference["shares"][:-1]}}))
    with pytest.raises(ArtifactError, match=r"invalid score_reference .*shares"):
        ModelScorer(registry, [SCENARIO])


def test_a_missing_manifest_is_named(registry):
    (registry / SCENARIO / "lstm" / MANIFEST).unlink()
    with pytest.raises(ArtifactError, match=f"lstm: no {MANIFEST}"):
        load_model(registry, SCENARIO, "lstm")


def test_champion_is_best_pr_auc_unless_pinned(registry):
    manifests = {m: load_model(registry, SCENARIO, m).manifest for m in MODELS}
    best = max(MODELS, key=lambda m: manifests[m]["metrics"]["pr_auc"])
    assert choose_champion(manifests) == best
    (registry / "champions.json").write_text(json.dumps({SCENARIO: "logreg"}))
    assert pins(registry) == {SCENARIO: "logreg"}
    assert ModelScorer(registry, [SCENARIO]).champion(SCENARIO) == "logreg"
    assert ModelScorer(registry, [SCENARIO], pins_override={SCENARIO: "lstm"}).champion(SCENARIO) == "lstm"
    with pytest.raises(ArtifactError, match="pinned champion 'svm'"):
        choose_champion(manifests, "svm")


@pytest.mark.broker  # runs a `bankguard` command
def test_cli_verify_reports_a_tampered_artifact_in_one_line(registry):
    (registry / SCENARIO / "logreg" / ARTIFACT).write_bytes(b"not a model")
    result = subprocess.run([sys.executable, "-m", "bankguard", "models", "verify", "--dir", str(registry)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and result.stderr.strip().count("\n") == 0, result.stderr
    assert "sha256" in result.stderr and "logreg" in result.stderr


def test_champion_ties_go_to_the_earlier_model_whatever_the_order():
    from bankguard.models.registry import choose_champion

    tied = {"mlp": {"metrics": {"pr_auc": 0.9}}, "hist_gbdt": {"metrics": {"pr_auc": 0.9}},
            "logreg": {"metrics": {"pr_auc": 0.5}}, "lstm": {"metrics": {"pr_auc": float("nan")}}}
    assert choose_champion(tied) == "hist_gbdt"
    assert choose_champion(dict(reversed(list(tied.items())))) == "hist_gbdt"
    assert choose_champion(tied | {"random_forest": {"metrics": {"pr_auc": 0.9}}}) == "random_forest"
