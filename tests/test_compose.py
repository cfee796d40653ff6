"""docker-compose.yml stays consistent with the code, since no Docker engine runs here:
mounts exist, services reference each other correctly, Prometheus scrapes what the
workers serve and loads the committed rules, settings and topics match the code.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import BaseModel
from typer.main import get_command

from bankguard.cli import app as cli_app
from bankguard.kafka import bankguard_topics
from bankguard.monitoring import find_binary, rule_files
from bankguard.settings import Settings

REPO = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, dict] = COMPOSE["services"]


def mounts(service: str) -> list[tuple[str, str]]:
    """(source, target) of every volume of a service, short or long syntax."""
    pairs = []
    for volume in SERVICES[service].get("volumes", []):
        if isinstance(volume, dict):
            pairs.append((volume["source"], volume["target"]))
        else:
            source, target, *_ = volume.split(":")
            pairs.append((source, target))
    return pairs


def is_bind(source: str) -> bool:
    return source.startswith((".", "/"))


def host_path(service: str, container_path: str) -> Path:
    """The repo file a container path of ``service`` comes from (longest bind mount wins)."""
    binds = [(source, target) for source, target in mounts(service) if is_bind(source)]
    for source, target in sorted(binds, key=lambda pair: -len(pair[1])):
        if container_path == target or container_path.startswith(target.rstrip("/") + "/"):
            return (REPO / source / container_path[len(target):].lstrip("/")).resolve()
    raise AssertionError(f"{service}: {container_path} is not bind-mounted from the repo")


def flag(service: str, name: str) -> str | None:
    """Value of ``--name=value`` or ``--name value`` in a service's command."""
    argv = command(service)
    for index, arg in enumerate(argv):
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
        if arg == name and index + 1 < len(argv):
            return argv[index + 1]
    return None


def command(service: str) -> list[str]:
    cmd = SERVICES[service].get("command", [])
    return shlex.split(cmd) if isinstance(cmd, str) else list(cmd)


def environment(service: str) -> dict[str, str]:
    env = SERVICES[service].get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def exposed(service: str) -> set[int]:
    return {int(str(port).split("/")[0]) for port in SERVICES[service].get("expose", [])}


def bankguard_services() -> list[str]:
    return [name for name in SERVICES if command(name)[:1] == ["bankguard"]]


def settings_of(service: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The Settings a bankguard container builds from its environment."""
    for key in [key for key in os.environ if key.startswith("BANKGUARD_")]:
        monkeypatch.delenv(key)
    for key, value in environment(service).items():
        monkeypatch.setenv(key, value)
    return Settings()


def cli_params(service: str) -> dict:
    """Parse a service's `bankguard SUBCOMMAND ...` with the real CLI (unknown options fail)."""
    argv = command(service)
    sub = get_command(cli_app).commands[argv[1]]
    return sub.make_context(argv[1], argv[2:]).params


def prometheus_config() -> dict:
    path = host_path("prometheus", flag("prometheus", "--config.file"))
    return yaml.safe_load(path.read_text())


def scrape_job(name: str) -> dict:
    jobs = {job["job_name"]: job for job in prometheus_config()["scrape_configs"]}
    assert name in jobs, f"compose Prometheus has no {name} job"
    return jobs[name]


# --- structure ----------------------------------------------------------------------


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_mounts_exist(service):
    declared = set(COMPOSE.get("volumes") or {})
    for source, _target in mounts(service):
        if is_bind(source):
            assert (REPO / source).exists(), f"{service}: {source} missing from the repo"
        else:
            assert source in declared, f"{service}: named volume {source} not declared"


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_depends_on_existing_services(service):
    depends = SERVICES[service].get("depends_on", [])
    for name in depends:
        assert name in SERVICES, f"{service} depends on unknown service {name}"
        if isinstance(depends, dict) and depends[name].get("condition") == "service_completed_successfully":
            assert SERVICES[name].get("restart", "no") == "no", f"{name} is one-shot: it must not restart"
        if isinstance(depends, dict) and depends[name].get("condition") == "service_healthy":
            assert "healthcheck" in SERVICES[name], f"{name} has no healthcheck to wait for"


def test_image_builds_from_this_repo():
    built = [name for name in SERVICES if "build" in SERVICES[name]]
    assert set(bankguard_services()) <= set(built)
    dockerfile = REPO / "Dockerfile"
    for name in built:
        assert SERVICES[name]["build"] in (".", "./")
    sources = [line.split()[1:-1] for line in dockerfile.read_text().splitlines() if line.startswith("COPY ")]
    for source in (path for group in sources for path in group):
        assert (REPO / source).exists(), f"Dockerfile copies missing {source}"


@pytest.mark.parametrize("service", bankguard_services())
def test_bankguard_commands_parse(service):
    cli_params(service)


def test_workers_scale():
    """Scaling needs replicas that don't fight over a host port or a container name."""
    worker = SERVICES["worker"]
    assert "ports" not in worker and "container_name" not in worker
    assert command("worker")[:2] == ["bankguard", "worker"]


# --- settings and topics --------------------------------------------------------------


def settings_field(name: str) -> None:
    """Fail unless BANKGUARD_A__B names a real (leaf) Settings field.

    Settings ignore unknown variables (extra="ignore"), so a typo would silently fall back
    to the default, e.g. to a loopback broker inside a container.
    """
    model: type[BaseModel] | None = Settings
    for part in name.removeprefix("BANKGUARD_").lower().split("__"):
        assert model is not None and part in model.model_fields, f"{name}: no Settings field {part!r}"
        annotation = model.model_fields[part].annotation
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    assert model is None, f"{name} names a settings group, not a field"


def env_names() -> set[str]:
    names = {key for service in SERVICES for key in environment(service)}
    names |= set(re.findall(r"\b(BANKGUARD_\w+)=", (REPO / "Dockerfile").read_text()))
    return {name for name in names if name.startswith("BANKGUARD_")}


def test_env_names_are_settings_fields():
    names = env_names()
    assert "BANKGUARD_KAFKA__BOOTSTRAP_SERVERS" in names
    for name in sorted(names):
        settings_field(name)


def test_settings_field_check_catches_typos():
    for wrong in ("BANKGUARD_KAFKA__BOOTSTRAP_SERVER", "BANKGUARD_KAFKA", "BANKGUARD_WEB_PORT"):
        with pytest.raises(AssertionError):
            settings_field(wrong)


@pytest.mark.parametrize("service", bankguard_services())
def test_bankguard_containers_reach_the_compose_broker(service, monkeypatch):
    settings = settings_of(service, monkeypatch)
    advertised = environment("kafka")["KAFKA_ADVERTISED_LISTENERS"]
    for server in settings.kafka.bootstrap_servers.split(","):
        assert f"://{server}" in advertised, f"{service}: {server} is not a listener the broker advertises"


def init_topics() -> dict[str, tuple[int, bool]]:
    script = command("kafka-init")[-1]
    created = re.findall(r"^\s*create (\S+) (\d+)(?: (\S+))?\s*$", script, flags=re.MULTILINE)
    return {name: (int(partitions), policy == "compact") for name, partitions, policy in created}


@pytest.mark.parametrize("service", bankguard_services())
def test_init_creates_the_topics_of_the_code(service, monkeypatch):
    settings = settings_of(service, monkeypatch)
    expected = {spec.name: (spec.partitions, spec.compacted) for spec in bankguard_topics(settings)}
    assert init_topics() == expected
    script = command("kafka-init")[-1]
    assert f"--replication-factor {settings.topics.replication_factor} " in script


def test_broker_does_not_auto_create_topics():
    assert environment("kafka")["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


# --- monitoring -------------------------------------------------------------------------


def dns_targets(job: dict) -> set[tuple[str, int]]:
    return {(name, sd["port"]) for sd in job.get("dns_sd_configs", []) for name in sd["names"]}


def test_prometheus_scrapes_every_worker_on_its_web_port(monkeypatch):
    port = cli_params("worker")["web_port"] or settings_of("worker", monkeypatch).worker.web_port
    assert ("worker", port) in dns_targets(scrape_job("bankguard-worker"))
    assert port in exposed("worker")


def test_prometheus_scrapes_the_producer_metrics_port():
    port = cli_params("producer")["metrics_port"]
    assert port is not None, "the producer serves no metrics without --metrics-port"
    assert ("producer", port) in dns_targets(scrape_job("bankguard-producer"))
    assert port in exposed("producer")


def test_compose_prometheus_loads_the_committed_rules(tmp_path):
    """Map the rule globs back to the repo; promtool then checks the config with them."""
    config = prometheus_config()
    loaded = set()
    for pattern in config["rule_files"]:
        folder, glob = pattern.rsplit("/", 1)
        loaded |= set(host_path("prometheus", folder).glob(glob))
    assert loaded == set(rule_files()) and loaded
    promtool = find_binary("promtool")
    if promtool is None:
        pytest.fail("promtool not on PATH: run scripts/install-system-packages.sh as root")
    config["rule_files"] = [str(path) for path in sorted(loaded)]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_alerts_the_compose_alertmanager():
    targets = [target for am in prometheus_config()["alerting"]["alertmanagers"]
               for static in am["static_configs"] for target in static["targets"]]
    assert targets == ["alertmanager:9093"]  # Alertmanager's default listen port
    assert flag("alertmanager", "--web.listen-address") is None
    config_path = host_path("alertmanager", flag("alertmanager", "--config.file"))
    assert config_path == REPO / "dashboards" / "alertmanager" / "alertmanager.yml"


def test_alertmanager_webhooks_reach_the_webhook_service():
    config_path = host_path("alertmanager", flag("alertmanager", "--config.file"))
    receivers = yaml.safe_load(config_path.read_text())["receivers"]
    urls = [hook["url"] for receiver in receivers for hook in receiver.get("webhook_configs", [])]
    assert urls
    for url in map(urlsplit, urls):
        assert url.hostname in SERVICES, f"{url.geturl()}: no such service"
        assert url.port in exposed(url.hostname)


def test_grafana_provisions_the_datasource_the_dashboards_use():
    provisioning = host_path("grafana", "/etc/grafana/provisioning")
    assert provisioning == REPO / "dashboards" / "grafana" / "provisioning"
    [datasource] = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    url = urlsplit(datasource["url"])
    assert url.hostname == "prometheus" and url.port == 9090
    assert "9090:9090" in SERVICES["prometheus"]["ports"]

    [provider] = yaml.safe_load((provisioning / "dashboards" / "bankguard.yml").read_text())["providers"]
    boards_dir = host_path("grafana", provider["options"]["path"])
    assert boards_dir == REPO / "dashboards" / "grafana" / "json"
    boards = sorted(boards_dir.glob("*.json"))
    assert boards, "no dashboards to provision"
    for board in boards:
        text = board.read_text(encoding="utf-8")
        assert "${DS_" not in text, f"{board.name}: import placeholders do not resolve when provisioned"
    datasource_uids = {ds["uid"] for board in boards for ds in datasources(json.loads(board.read_text()))}
    assert datasource_uids == {datasource["uid"]}


def datasources(node: object) -> list[dict]:
    """Every prometheus datasource reference in a dashboard JSON tree."""
    found = []
    if isinstance(node, dict):
        ds = node.get("datasource")
        if isinstance(ds, dict) and ds.get("type") == "prometheus":
            found.append(ds)
        for value in node.values():
            found += datasources(value)
    elif isinstance(node, list):
        for value in node:
            found += datasources(value)
    return found
