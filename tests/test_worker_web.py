"""The worker's web server serves /metrics and /health only: none of Faust's built-in views
(table contents, cluster routing, statistics), which have no authentication."""

from __future__ import annotations

import urllib.error
import urllib.request

import orjson
import pytest

FAUST_VIEWS = ["/", "/router/", "/table/", "/table/entity-state/", "/graph/", "/stats/", "/assignments/",
               "/performance/", "/signal/"]


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture
def base_url(worker) -> str:
    worker.wait_for("bankguard_events", lambda totals: True)  # serving
    return worker.metrics_url.removesuffix("/metrics")


def test_only_metrics_and_health_are_served(base_url):
    status, body = get(base_url + "/metrics")
    assert status == 200 and b"bankguard_events_total" in body
    status, body = get(base_url + "/health")
    assert status == 200 and orjson.loads(body) == {"status": "ok"}
    served = {path: get(base_url + path)[0] for path in FAUST_VIEWS}
    assert served == dict.fromkeys(FAUST_VIEWS, 404)
