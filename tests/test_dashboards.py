"""Grafana dashboards as code: committed JSON is the build, queries parse and name real metrics, push works.

Grafana cannot be installed here, so the push path runs against a small HTTP server
that speaks the three endpoints grafana-client calls; PromQL is checked with the
real ``promtool`` (Debian ``prometheus`` package).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from bankguard.broker import free_port
from bankguard.dashboards.cli import app as dashboards_app
from bankguard.dashboards.grafana.boards import BOARDS
from bankguard.dashboards.grafana.build import JSON_DIR, build_all
from bankguard.dashboards.grafana.panels import DATASOURCE_UID
from bankguard.dashboards.grafana.push import FOLDER_UID, DashboardPushError, push_all
from bankguard.errors import BankguardError

#: The uids other things link to (alerts' dashboard URLs, bookmarks): changing one is a breaking change.
EXPECTED_UIDS = {"bankguard-overview", "bankguard-scenario", "bankguard-rules",
                 "bankguard-models", "bankguard-quality", "bankguard-pipeline"}

#: Prometheus' own target health.
STANDARD_METRICS = {"up"}

#: Grafana's variables, replaced by values of the same kind before PromQL is parsed.
SUBSTITUTIONS = {"$__rate_interval": "5m", "$__range": "1h", "$scenario": ".+", "$model": ".+"}


def load_boards(directory: Path = JSON_DIR) -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted(directory.glob("*.json"))}


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # collapsed rows nest their panels


def exprs(board: dict[str, Any]) -> Iterator[str]:
    for panel in panels(board):
        for target in panel.get("targets", []):
            yield target["expr"]


def all_exprs() -> list[str]:
    return [expr for board in load_boards().values() for expr in exprs(board)]


def exported_metric_names() -> set[str]:
    """Every series name the worker's, the producer's and the evaluator's registries can expose."""
    from bankguard.models.arena import ArenaCollector
    from bankguard.models.registry import default_dir
    from bankguard.producers.metrics import PublisherCollector
    from bankguard.producers.publisher import PublishReport
    from bankguard.settings import EvaluatorSettings
    from bankguard.stream_agents.evaluator.metrics import EvaluatorState, QualityCollector
    from bankguard.stream_agents.metrics import WorkerMetrics

    registry = CollectorRegistry()
    registry.register(PublisherCollector(PublishReport(seed=0, scenarios={})))
    registry.register(ArenaCollector(default_dir()))  # the worker serves the shipped arena report
    registry.register(QualityCollector(EvaluatorState(clock_ms=0), EvaluatorSettings(), k=20))
    families = [*WorkerMetrics().registry.collect(), *registry.collect()]
    suffixes = {"counter": ("_total",), "gauge": ("",), "info": ("_info",),
                "histogram": ("_bucket", "_sum", "_count"), "summary": ("", "_sum", "_count")}
    return {family.name + suffix for family in families for suffix in suffixes.get(family.type, ("",))}


_PROMQL_KEYWORDS = {"and", "or", "unless", "bool", "offset", "group_left", "group_right", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (strings, matchers, ranges, groupings and calls removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*(?!\s*\()(?![A-Za-z0-9_:])", text))
    return {name for name in names if name.lower() not in _PROMQL_KEYWORDS}


# --- the committed JSON ------------------------------------------------------------------------


def test_committed_json_is_a_fresh_build(tmp_path):
    """Generated files are never hand-edited: change the Python, then 'bankguard dashboards build'."""
    built = {path.name: path.read_text(encoding="utf-8") for path in build_all(tmp_path)}
    committed = {path.name: path.read_text(encoding="utf-8") for path in JSON_DIR.glob("*.json")}
    assert sorted(committed) == sorted(built), "run 'bankguard dashboards build' and commit the result"
    for name, text in built.items():
        assert committed[name] == text, f"{name} differs from a fresh build: run 'bankguard dashboards build'"


def test_build_is_deterministic(tmp_path):
    first = [path.read_bytes() for path in build_all(tmp_path / "a")]
    second = [path.read_bytes() for path in build_all(tmp_path / "b")]
    assert first == second
    assert all(text.endswith(b"}\n") for text in first)


def test_uids_are_unique_stable_and_name_the_files():
    boards = load_boards()
    assert set(boards) == EXPECTED_UIDS == set(BOARDS)
    assert {board["uid"] for board in boards.values()} == EXPECTED_UIDS
    for uid, board in boards.items():
        assert board["uid"] == uid
        assert "id" not in board or board["id"] is None, "a numeric id would clash between Grafana instances"


@pytest.mark.parametrize("uid", sorted(EXPECTED_UIDS))
def test_dashboard_conventions(uid):
    board = load_boards()[uid]
    assert "bankguard" in board["tags"]
    assert board["refresh"] == "10s"
    assert board["time"] == {"from": "now-1h", "to": "now"}
    ids = [panel["id"] for panel in panels(board)]
    assert len(ids) == len(set(ids)) and 0 not in ids
    for panel in panels(board):
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, f"{panel['title']!r} overflows the 24-column grid"
        ref_ids = [target["refId"] for target in panel.get("targets", [])]
        assert len(ref_ids) == len(set(ref_ids)) and "" not in ref_ids


@pytest.mark.parametrize("uid", sorted(EXPECTED_UIDS))
def test_every_query_uses_the_provisioned_datasource(uid):
    board = load_boards()[uid]
    text = (JSON_DIR / f"{uid}.json").read_text(encoding="utf-8")
    assert "${DS_" not in text and "__inputs" not in text, "import placeholders break provisioning"
    queried = [panel for panel in panels(board) if panel["type"] != "row"]
    assert queried
    for panel in queried:
        assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}, panel["title"]
        assert panel["targets"], f"{panel['title']!r} has no query"
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}, panel["title"]
    for variable in board["templating"]["list"]:
        assert variable["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}


@pytest.mark.parametrize("uid", sorted(EXPECTED_UIDS))
def test_scenario_variable(uid):
    variables = {variable["name"]: variable for variable in load_boards()[uid]["templating"]["list"]}
    scenario = variables["scenario"]
    assert scenario["type"] == "query"
    assert scenario["query"] == "label_values(bankguard_events_total, scenario)"
    if uid == "bankguard-scenario":  # the drill-down is about one scenario at a time
        assert not scenario["multi"] and not scenario["includeAll"]
    else:
        assert scenario["multi"] and scenario["includeAll"]


# --- PromQL ------------------------------------------------------------------------------------


def substitute(expr: str) -> str:
    for variable, value in SUBSTITUTIONS.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr!r}: add it to SUBSTITUTIONS"
    return expr


def promtool_check(tmp_path: Path, expressions: list[str]) -> subprocess.CompletedProcess:
    """Parse the expressions with the real Prometheus parser, as recording rules."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: install Debian's prometheus package (scripts/install-system-packages.sh)"
    rules = {"groups": [{"name": "dashboards", "rules": [
        {"record": f"bankguard:dashboard_query:{index}", "expr": substitute(expr)}
        for index, expr in enumerate(expressions)]}]}
    path = tmp_path / "dashboard-queries.rules.yml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False), encoding="utf-8")
    return subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)


@pytest.mark.broker
def test_every_query_parses_with_promtool(tmp_path):
    expressions = all_exprs()
    assert len(expressions) > 40
    result = promtool_check(tmp_path, expressions)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(expressions)} rules found" in result.stdout + result.stderr


@pytest.mark.broker
def test_promtool_check_catches_a_broken_query(tmp_path):
    """Guards the guard: a malformed expression must fail the check above."""
    result = promtool_check(tmp_path, ['sum by (scenario (rate(bankguard_events_total[5m]))'])
    assert result.returncode != 0


def test_every_metric_exists():
    known = exported_metric_names() | STANDARD_METRICS
    assert "bankguard_events_total" in known and "bankguard_rules_config_info" in known
    for expr in all_exprs():
        names = metric_names(expr)
        assert names, f"no metric in {expr!r}"
        assert names <= known, f"{sorted(names - known)} in {expr!r} is not exported"


def test_metric_name_extraction():
    expr = ('histogram_quantile(0.99, sum by (model, le) (rate(bankguard_model_inference_seconds_bucket'
            '{model=~"$model"}[5m]))) / on(model) group_left sum(up{job="x"}) > 0')
    assert metric_names(expr) == {"bankguard_model_inference_seconds_bucket", "up"}


# --- push --------------------------------------------------------------------------------------


class FakeGrafana(ThreadingHTTPServer):
    """Just the Grafana HTTP API grafana-client uses for a push; records every request."""

    def __init__(self, *, folders: list[dict[str, Any]] | None = None, token: str = "good-token") -> None:
        super().__init__(("127.0.0.1", 0), _FakeGrafanaHandler)
        self.folders = list(folders or [])
        self.token = token
        self.requests: list[tuple[str, str, dict[str, Any] | None]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def posted(self, suffix: str) -> list[dict[str, Any]]:
        return [body for method, path, body in self.requests if method == "POST" and path.endswith(suffix)]


class _FakeGrafanaHandler(BaseHTTPRequestHandler):
    server: FakeGrafana

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: Any) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.server.requests.append((method, self.path, body))
        if self.headers.get("Authorization") != f"Bearer {self.server.token}":
            return self._reply(401, {"message": "Unauthorized"})
        path = self.path.split("?")[0]
        if method == "GET" and path.endswith("/api/folders"):
            return self._reply(200, self.server.folders)
        if method == "POST" and path.endswith("/api/folders"):
            folder = {"id": len(self.server.folders) + 1, "uid": body["uid"], "title": body["title"]}
            self.server.folders.append(folder)
            return self._reply(200, folder)
        if method == "POST" and path.endswith("/api/dashboards/db"):
            uid = body["dashboard"]["uid"]
            return self._reply(200, {"status": "success", "uid": uid, "url": f"/d/{uid}", "version": 1})
        return self._reply(404, {"message": "Not found"})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")


@pytest.fixture
def grafana(request) -> Iterator[FakeGrafana]:
    server = FakeGrafana(**getattr(request, "param", {}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_push_creates_the_folder_and_overwrites_every_dashboard(grafana):
    pushed = push_all(grafana.url, "good-token", JSON_DIR)
    assert sorted(pushed) == sorted(EXPECTED_UIDS)
    assert grafana.posted("/api/folders") == [{"title": "bankguard", "uid": FOLDER_UID}]
    uploads = grafana.posted("/api/dashboards/db")
    committed = load_boards()
    assert sorted(upload["dashboard"]["uid"] for upload in uploads) == sorted(EXPECTED_UIDS)
    for upload in uploads:
        assert upload["overwrite"] is True
        assert upload["folderUid"] == FOLDER_UID
        board = dict(upload["dashboard"])
        assert board.pop("id") is None
        assert board == committed[board["uid"]]


@pytest.mark.parametrize("grafana", [{"folders": [{"id": 7, "uid": "ops-bg", "title": "bankguard"}]}],
                         indirect=True)
def test_push_reuses_an_existing_folder(grafana):
    push_all(grafana.url, "good-token", JSON_DIR)
    assert grafana.posted("/api/folders") == []
    assert {upload["folderUid"] for upload in grafana.posted("/api/dashboards/db")} == {"ops-bg"}


def test_push_under_a_sub_path(grafana):
    push_all(grafana.url + "/grafana", "good-token", JSON_DIR)
    assert all(path.startswith("/grafana/api/") for _, path, _ in grafana.requests)


def test_push_with_a_bad_token_is_one_clear_line(grafana):
    with pytest.raises(DashboardPushError) as caught:
        push_all(grafana.url, "wrong", JSON_DIR)
    message = str(caught.value)
    assert "401" in message and grafana.url in message and "\n" not in message
    assert grafana.posted("/api/dashboards/db") == []


def test_push_to_nothing_listening_is_one_clear_line():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(DashboardPushError, match=r"^cannot reach Grafana at .*: Connection refused$"):
        push_all(url, "token", JSON_DIR)


def test_push_of_an_empty_directory(tmp_path):
    with pytest.raises(DashboardPushError, match="no dashboard JSON"):
        push_all("http://127.0.0.1:1", "token", tmp_path)


def test_push_error_is_a_bankguard_error():
    """bankguard.cli.main prints BankguardError as one line and exits 1."""
    assert issubclass(DashboardPushError, BankguardError)


# --- CLI ---------------------------------------------------------------------------------------


def test_cli_build_writes_the_committed_files(tmp_path):
    result = CliRunner().invoke(dashboards_app, ["build", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    written = sorted(path.name for path in (tmp_path / "out").glob("*.json"))
    assert written == sorted(f"{uid}.json" for uid in EXPECTED_UIDS)
    for name in written:
        assert (tmp_path / "out" / name).read_text() == (JSON_DIR / name).read_text()


def test_cli_push(grafana):
    result = CliRunner().invoke(dashboards_app, ["push", "--url", grafana.url, "--token", "good-token"])
    assert result.exit_code == 0, result.output
    assert len(grafana.posted("/api/dashboards/db")) == len(EXPECTED_UIDS)


def test_cli_push_failure_raises_the_one_line_error(grafana):
    result = CliRunner().invoke(dashboards_app, ["push", "--url", grafana.url, "--token", "wrong"])
    assert result.exit_code != 0
    assert isinstance(result.exception, DashboardPushError)


def test_cli_push_needs_url_and_token():
    result = CliRunner().invoke(dashboards_app, ["push"], env={"GRAFANA_URL": "", "GRAFANA_TOKEN": ""})
    assert result.exit_code == 2


def test_latency_slo_matches_a_worker_histogram_bucket():
    """The SLO panels read the le="0.1" bucket: it must be a real bucket boundary of the worker."""
    from bankguard.dashboards.grafana import panels
    from bankguard.stream_agents.metrics import LATENCY_BUCKETS, LATENCY_SLO_S

    assert panels.LATENCY_SLO_S == LATENCY_SLO_S and LATENCY_SLO_S in LATENCY_BUCKETS
    assert any(f'le="{LATENCY_SLO_S}"' in expr for expr in all_exprs())
