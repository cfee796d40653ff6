"""The committed dashboards' panel queries, run against a real Prometheus."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from kafka_helpers import wait_until

DASHBOARDS = Path(__file__).parents[1] / "dashboards" / "grafana" / "json"
#: What Grafana substitutes before it queries; `$__rate_interval` is at least 4 scrapes.
GRAFANA_VARIABLES = {"$__rate_interval": "15s", "$__range": "5m", "$scenario": ".+", "$model": ".+"}
#: Its panels chart the evaluator's figures, which need days of decided outcomes.
QUALITY_BOARD = "bankguard-quality"


def panel_queries(boards: set[str] | None = None) -> list[tuple[str, str, str]]:
    """(board uid, panel title, expression) of every panel target, of ``boards`` or of all."""
    def panels(items: list[dict]) -> Iterator[dict]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    queries = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        if boards is not None and board["uid"] not in boards:
            continue
        for panel in panels(board["panels"]):
            for target in panel.get("targets", []):
                expr = target["expr"]
                for name, value in GRAFANA_VARIABLES.items():
                    expr = expr.replace(name, value)
                queries.append((board["uid"], panel["title"], expr))
    return queries


def query(prometheus: str, expr: str) -> list[dict]:
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)["data"]["result"]


def assert_every_panel_has_data(prometheus: str, queries: list[tuple[str, str, str]], timeout_s: float = 90) -> None:
    """Wait until every query returns data; name those that never do."""
    assert queries
    empty = list(queries)

    def all_have_data() -> bool:
        empty[:] = [(uid, title, expr) for uid, title, expr in empty if not query(prometheus, expr)]
        return not empty

    wait_until(all_have_data, lambda: "panels without data:\n" + "\n".join(f"{u} / {t}: {e}" for u, t, e in empty),
               timeout_s=timeout_s, every_s=1.0)  # a look per scrape
