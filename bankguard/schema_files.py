"""The committed JSON Schema files, generated from the event models."""

from __future__ import annotations

import json
from pathlib import Path

from bankguard.alerts import ALERT_SCHEMA_VERSION, Alert
from bankguard.events import EVENT_MODELS, SCHEMA_VERSION, json_schema
from bankguard.outcomes import OUTCOME_SCHEMA_PATH, render_outcome_schema

SCHEMA_DIR = Path(__file__).parent / "schemas"


def schema_path(scenario: str, directory: Path = SCHEMA_DIR) -> Path:
    return directory / f"{scenario}.v{SCHEMA_VERSION}.json"


def render_schema(scenario: str) -> str:
    return json.dumps(json_schema(scenario), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


ALERT_SCHEMA_PATH = SCHEMA_DIR / f"alert.v{ALERT_SCHEMA_VERSION}.json"


def render_alert_schema() -> str:
    schema = Alert.model_json_schema()
    schema["$id"] = f"https://bankguard.dev/schemas/alert.v{ALERT_SCHEMA_VERSION}.json"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def write_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write every event schema, the alert and the outcome schema; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for scenario in EVENT_MODELS:
        path = schema_path(scenario, directory)
        path.write_text(render_schema(scenario))
        written.append(path)
    alert_path = directory / ALERT_SCHEMA_PATH.name
    alert_path.write_text(render_alert_schema())
    written.append(alert_path)
    outcome_path = directory / OUTCOME_SCHEMA_PATH.name
    outcome_path.write_text(render_outcome_schema())
    written.append(outcome_path)
    return written
