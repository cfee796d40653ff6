"""Model artifacts on disk: ``<dir>/<scenario>/<model>/model.onnx`` + ``manifest.json``.

Why a manifest and two checks on every load:
- ``sha256`` of ``model.onnx``: a truncated copy, a bad merge or a tampered file is
  refused instead of scoring live traffic with something nobody trained.
- the feature signature (column list and order, window definitions, vocabularies):
  a model must be fed exactly the columns it was trained on. When the code's feature
  spec changes, old artifacts are refused with the first difference named, rather
  than silently reading shifted columns.
The validation scores' distribution (``score_reference``, :mod:`bankguard.models.drift`)
is required too: the worker measures the champion's live drift against it, so a model
without one is refused as out of date rather than served unwatched.
Artifacts are ONNX only (no pickle/joblib: loading one never executes code).

The champion of a scenario is the model with the best held-out PR-AUC, unless a pin
(``champions.json`` in the registry dir, or a mapping passed in) names another.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from bankguard.errors import BankguardError
from bankguard.models.budget import Calibration
from bankguard.models.drift import ScoreReference
from bankguard.models.features import feature_signature
from bankguard.models.sequences import SEQ_LEN, vector_width
from bankguard.scenarios import SCENARIOS

MODELS = ("logreg", "linear_svm", "random_forest", "hist_gbdt", "mlp", "lstm")  # the arena, in table order
FORMAT_VERSION = 3  # 2: thresholds capped by the alert budget, calibration knots; 3: score_reference
SEQUENCE_VERSION = 1  # bump when event_vector changes meaning
ARTIFACT = "model.onnx"
MANIFEST = "manifest.json"
PINS = "champions.json"
SHIPPED = Path(__file__).resolve().parent / "artifacts"
LIBRARIES = ("numpy", "scikit-learn", "skl2onnx", "onnx", "onnxruntime", "torch")


class ArtifactError(BankguardError):
    """An artifact that must not be used: missing, tampered, or built for other features."""


@dataclass(frozen=True)
class LoadedModel:
    """A verified model: its manifest and ONNX bytes."""

    scenario: str
    name: str
    manifest: dict[str, Any]
    onnx: bytes

    @property
    def threshold(self) -> float:
        return float(self.manifest["threshold"])

    @property
    def calibration(self) -> Calibration:
        return Calibration.from_manifest(self.manifest["calibration"])

    @property
    def score_reference(self) -> ScoreReference:
        """The validation scores' bins and shares, which live drift is measured against."""
        return ScoreReference.from_manifest(self.manifest["score_reference"])

    @property
    def budget(self) -> float:
        """Alerts per 1,000 events the threshold was capped at on validation data."""
        return float(self.manifest["threshold_from"]["budget_per_1000_events"])

    @property
    def uses_sequences(self) -> bool:
        return "sequence" in self.manifest


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def sequence_signature(scenario: str) -> dict[str, Any]:
    return {"length": SEQ_LEN, "width": vector_width(scenario), "version": SEQUENCE_VERSION}


def default_dir() -> Path:
    """Where ``bankguard train`` writes and the worker reads: ``$BANKGUARD_RUN_DIR/models``
    when it holds trained models, else the artifacts shipped with the package."""
    try:
        from bankguard.settings import get_settings

        run_dir = Path(get_settings().run_dir)
    except Exception:  # noqa: BLE001  settings errors are reported by the commands that need them
        run_dir = Path(".bankguard")
    trained = run_dir / "models"
    return trained if list_models(trained) else SHIPPED


def write_model(root: Path, scenario: str, name: str, onnx: bytes, manifest: Mapping[str, Any]) -> Path:
    """Write one artifact; the manifest gets the format, digest, signature and versions."""
    folder = root / scenario / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ARTIFACT).write_bytes(onnx)
    full = {
        "format_version": FORMAT_VERSION,
        "scenario": scenario,
        "model": name,
        "artifact": ARTIFACT,
        "sha256": sha256(onnx),
        "size_bytes": len(onnx),
        "features": feature_signature(scenario),
        **dict(manifest),
        "library_versions": library_versions(),
    }
    (folder / MANIFEST).write_text(json.dumps(full, indent=2, ensure_ascii=False, sort_keys=False) + "\n",
                                   encoding="utf-8")
    return folder


def _first_difference(stored: Any, current: Any, path: str = "") -> str:
    """A short description of where two JSON-like values first differ."""
    if isinstance(stored, dict) and isinstance(current, dict):
        for key in sorted(set(stored) | set(current)):
            if key not in stored:
                return f"{path}{key} missing from the manifest"
            if key not in current:
                return f"{path}{key} no longer in the code"
            if stored[key] != current[key]:
                return _first_difference(stored[key], current[key], f"{path}{key}.")
    if isinstance(stored, list) and isinstance(current, list):
        for i, (a, b) in enumerate(zip(stored, current, strict=False)):
            if a != b:
                return _first_difference(a, b, f"{path}{i}.")
        if len(stored) != len(current):
            return f"{path.rstrip('.')} has {len(stored)} entries in the manifest, {len(current)} in the code"
    return (f"{path.rstrip('.')}: manifest {json.dumps(stored, ensure_ascii=False)[:80]}, "
            f"code {json.dumps(current, ensure_ascii=False)[:80]}")


def read_manifest(folder: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        return manifest
    except FileNotFoundError:
        raise ArtifactError(f"model artifact {folder}: no {MANIFEST}") from None
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"model artifact {folder}: unreadable {MANIFEST} ({exc})") from None


def load_model(root: Path, scenario: str, name: str) -> LoadedModel:
    """Read and verify one artifact; raise :class:`ArtifactError` naming what is wrong."""
    folder = root / scenario / name
    manifest = read_manifest(folder)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"model artifact {folder}: format version {manifest.get('format_version')}, "
                            f"this code reads {FORMAT_VERSION}; retrain with 'bankguard train'")
    try:
        onnx = (folder / str(manifest.get("artifact", ARTIFACT))).read_bytes()
    except OSError as exc:
        raise ArtifactError(f"model artifact {folder}: cannot read {ARTIFACT} ({exc.strerror})") from None
    digest = sha256(onnx)
    if digest != manifest.get("sha256"):
        raise ArtifactError(f"model artifact {folder}: sha256 of {ARTIFACT} is {digest[:12]}..., "
                            f"the manifest says {str(manifest.get('sha256'))[:12]}... (modified or corrupt)")
    current = feature_signature(scenario)
    if manifest.get("features") != current:
        where = _first_difference(manifest.get("features"), current)
        raise ArtifactError(f"model artifact {folder}: built for other features than the code's "
                            f"{scenario} spec (features.{where}); retrain with 'bankguard train'")
    if "sequence" in manifest and manifest["sequence"] != sequence_signature(scenario):
        where = _first_difference(manifest["sequence"], sequence_signature(scenario))
        raise ArtifactError(f"model artifact {folder}: built for other sequences than the code's "
                            f"(sequence.{where}); retrain with 'bankguard train'")
    if "score_reference" not in manifest:
        raise ArtifactError(f"model artifact {folder}: no score_reference in {MANIFEST}; "
                            "retrain with 'bankguard train'")
    try:
        ScoreReference.from_manifest(manifest["score_reference"])  # a bad one fails here, not mid-stream
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"model artifact {folder}: invalid score_reference in {MANIFEST} ({exc})") from None
    return LoadedModel(scenario, name, manifest, onnx)


def list_models(root: Path) -> dict[str, list[str]]:
    """Scenario -> model names that have a manifest (not yet verified)."""
    out: dict[str, list[str]] = {}
    for manifest in sorted(root.glob(f"*/*/{MANIFEST}")):
        scenario = manifest.parent.parent.name
        if scenario in SCENARIOS:  # not the forecasters' folder
            out.setdefault(scenario, []).append(manifest.parent.name)
    return out


def pins(root: Path, override: Mapping[str, str] | None = None) -> dict[str, str]:
    """Pinned champions: ``champions.json`` in the registry, then ``override`` on top."""
    pinned: dict[str, str] = {}
    path = root / PINS
    if path.exists():
        try:
            pinned = {str(k): str(v) for k, v in json.loads(path.read_text(encoding="utf-8")).items()}
        except (OSError, ValueError, AttributeError) as exc:
            raise ArtifactError(f"{path}: not a JSON object of scenario -> model ({exc})") from None
    return pinned | dict(override or {})


def choose_champion(manifests: Mapping[str, Mapping[str, Any]], pinned: str | None = None) -> str:
    """The pinned model if it exists, else the best held-out PR-AUC.

    Ties go to the earlier model in ``MODELS`` order (the simpler one), whatever order
    the manifests come in: the worker, which reads them off disk, and training, which
    has them in memory, must name the same champion."""
    if pinned is not None:
        if pinned not in manifests:
            raise ArtifactError(f"pinned champion {pinned!r} has no artifact (have: {', '.join(manifests)})")
        return pinned

    def key(name: str) -> tuple[float, int]:
        value = manifests[name].get("metrics", {}).get("pr_auc")
        score = float(value) if isinstance(value, int | float) and value == value else -1.0
        rank = MODELS.index(name) if name in MODELS else len(MODELS)
        return score, -rank

    return max(sorted(manifests), key=key)
