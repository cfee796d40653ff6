"""Render the dashboards to JSON files that are committed and provisioned as is.

The output is deterministic (sorted keys, two-space indent, trailing newline, panel
ids and query refIds assigned in order) so a rebuild with no code change produces
no diff, and the test that compares committed files with a fresh build is exact.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model

from .boards import BOARDS

#: Where the committed JSON lives (``dashboards/grafana/json``), one ``<uid>.json`` each.
JSON_DIR = Path(__file__).resolve().parent / "json"


def _number(panels: list[Any], next_id: int = 1) -> int:
    """Give panels ids 1, 2, ... (rows and their children included) and targets refIds A, B, ..."""
    for panel in panels:
        panel.id_val = next_id
        next_id += 1
        for index, target in enumerate(getattr(panel, "targets", None) or []):
            target.ref_id = string.ascii_uppercase[index]
        if isinstance(panel, model.RowPanel):
            next_id = _number(panel.panels, next_id)
    return next_id


def render(uid: str) -> dict[str, Any]:
    """One dashboard as the plain JSON-compatible dict Grafana stores."""
    board = BOARDS[uid]().build()
    _number(board.panels or [])
    return json.loads(json.dumps(board, cls=JSONEncoder))


def dumps(board: dict[str, Any]) -> str:
    """The canonical text of a dashboard file."""
    return json.dumps(board, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def build_all(out_dir: Path = JSON_DIR) -> list[Path]:
    """Write every dashboard to ``out_dir/<uid>.json``; returns the paths in board order."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for uid in BOARDS:
        path = out_dir / f"{uid}.json"
        path.write_text(dumps(render(uid)), encoding="utf-8")
        paths.append(path)
    return paths
