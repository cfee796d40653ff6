"""The committed JSON Schema files, generated from the event models of the scenario registry."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from bankguard.alerts import ALERT_SCHEMA_VERSION, Alert
from bankguard.cases import CASE_SCHEMA_VERSION, Case
from bankguard.events import SCHEMA_VERSION
from bankguard.outcomes import OUTCOME_SCHEMA_PATH, render_outcome_schema
from bankguard.scenarios import SCENARIOS

SCHEMA_DIR = Path(__file__).parent / "schemas"


def schema_path(scenario: str, directory: Path = SCHEMA_DIR) -> Path:
    return directory / f"{scenario}.v{SCHEMA_VERSION}.json"


def render_schema(scenario: str) -> str:
    return json.dumps(SCENARIOS[scenario].json_schema(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


ALERT_SCHEMA_PATH = SCHEMA_DIR / f"alert.v{ALERT_SCHEMA_VERSION}.json"
CASE_SCHEMA_PATH = SCHEMA_DIR / f"case.v{CASE_SCHEMA_VERSION}.json"


def _record_schema(model: type[BaseModel], path: Path) -> str:
    schema = model.model_json_schema()
    schema["$id"] = f"https://bankguard.dev/schemas/{path.name}"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def record_schemas() -> dict[str, str]:
    """The output records' schemas (alert, case, outcome) by file name, as committed."""
    return {ALERT_SCHEMA_PATH.name: _record_schema(Alert, ALERT_SCHEMA_PATH),
            CASE_SCHEMA_PATH.name: _record_schema(Case, CASE_SCHEMA_PATH),
            OUTCOME_SCHEMA_PATH.name: render_outcome_schema()}


def write_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write every event schema and the output records' schemas; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for scenario in SCENARIOS:
        path = schema_path(scenario, directory)
        path.write_text(render_schema(scenario))
        written.append(path)
    for name, text in record_schemas().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written
