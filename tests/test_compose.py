"""docker-compose.yml stays consistent with the code, since no Docker engine runs here:
mounts exist, services reference each other correctly, Prometheus scrapes what the
workers serve and loads the committed rules, settings and topics match the code, and
it is locked down: SCRAM over TLS only, per-role ACLs, loopback ports, no Prometheus
lifecycle API, no anonymous Grafana.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
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
    advertised = broker_properties()["advertised.listeners"]
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
    assert broker_properties()["auto.create.topics.enable"] == "false"


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


@pytest.mark.broker
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
    assert "127.0.0.1:9090:9090" in SERVICES["prometheus"]["ports"]

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


# --- locked down --------------------------------------------------------------------------


def heredoc(script: str, target: str) -> dict[str, str]:
    """``key=value`` lines of the heredoc a script writes to ``target``."""
    match = re.search(rf'cat > "?{re.escape(target)}"? <<EOF\n(.*?)\nEOF', script, flags=re.DOTALL)
    assert match, f"no heredoc writing {target}"
    return dict(line.split("=", 1) for line in match.group(1).splitlines() if line.strip())


def broker_properties() -> dict[str, str]:
    """The server.properties the kafka service writes before it starts."""
    return heredoc(command("kafka")[-1], "$$props")


def listeners() -> dict[str, tuple[str, int, str]]:
    """Listener name -> (bind host, port, security protocol)."""
    props = broker_properties()
    protocols = dict(item.split(":") for item in props["listener.security.protocol.map"].split(","))
    found = {}
    for listener in props["listeners"].split(","):
        name, address = listener.split("://")
        host, port = address.rsplit(":", 1)
        found[name] = (host, int(port), protocols[name])
    return found


def published(service: str) -> list[tuple[str, int, int]]:
    """(host address, host port, container port) of a service's published ports."""
    out = []
    for port in SERVICES[service].get("ports", []):
        parts = str(port).split(":")
        assert len(parts) == 3, f"{service}: {port} publishes on every interface; bind it to 127.0.0.1"
        out.append((parts[0], int(parts[1]), int(parts[2].split("/")[0])))
    return out


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_published_ports_bind_loopback_only(service):
    for host, _, _ in published(service):
        assert host == "127.0.0.1", f"{service} publishes on {host}"


def test_the_broker_speaks_scram_over_tls_only():
    found = listeners()
    props = broker_properties()
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    for name, (host, _port, protocol) in found.items():
        if name == props["controller.listener.names"]:
            # KRaft controllers cannot use SCRAM: mutual TLS, on the container's loopback.
            assert (host, protocol) == ("localhost", "SSL")
            assert props[f"listener.name.{name.lower()}.ssl.client.auth"] == "required"
        else:
            assert protocol == "SASL_SSL", f"listener {name} is {protocol}"
    assert props["inter.broker.listener.name"] in found and props["sasl.mechanism.inter.broker.protocol"] == \
        "SCRAM-SHA-512"
    published_ports = {container for _, _, container in published("kafka")}
    assert published_ports == {port for name, (_, port, protocol) in found.items() if name == "HOST"}
    assert all(found[name][2] == "SASL_SSL" for name in found if found[name][1] in published_ports)
    assert props["ssl.endpoint.identification.algorithm"] == "https"
    assert "PLAINTEXT" not in props["listener.security.protocol.map"]


def test_the_broker_denies_what_no_acl_allows():
    props = broker_properties()
    assert props["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert set(props["super.users"].split(";")) == {"User:admin", "User:CN=kafka"}
    assert "User:ANONYMOUS" not in props["super.users"]


def scram_users() -> dict[str, str]:
    """SCRAM user -> the environment variable holding its password, as the broker creates them."""
    script = command("kafka")[-1]
    return dict(re.findall(r'\(scram (\S+) "\$\$(\w+)"\)', script))


def compose_variable(value: str) -> str:
    match = re.fullmatch(r"\$\{(\w+):\?[^}]*\}", value)
    assert match, f"{value!r} is not a required compose variable (${{NAME:?message}})"
    return match.group(1)


ROLES = {"producer": "producer", "worker": "worker", "investigations": "investigations", "evaluator": "evaluator"}


@pytest.mark.parametrize("service", bankguard_services())
def test_bankguard_clients_authenticate_as_their_own_role_over_tls(service, monkeypatch):
    settings = settings_of(service, monkeypatch)
    kafka = settings.kafka
    assert (kafka.security_protocol, kafka.sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-512")
    assert kafka.sasl_username == ROLES[service]
    users = scram_users()
    password = compose_variable(environment(service)["BANKGUARD_KAFKA__SASL_PASSWORD"])
    assert users[kafka.sasl_username] == password
    assert compose_variable(environment("kafka")[password]) == password
    assert host_path(service, str(kafka.ssl_cafile)) == REPO / "compose" / "tls" / "ca.crt"
    assert host_path("kafka", broker_properties()["ssl.truststore.location"]) == REPO / "compose" / "tls" / "ca.crt"


def acls() -> dict[str, set[tuple[str, str, str, str]]]:
    """principal -> {(operation, resource type, name, pattern type)} granted by kafka-init."""
    script = command("kafka-init")[-1]
    granted: dict[str, set] = {}
    loop = re.search(r"for role in ([^;]+); do\n\s*allow \$\$role (.+)\n\s*done", script)
    lines = [f"{role} {loop.group(2)}" for role in loop.group(1).split()] if loop else []
    lines += re.findall(r"^\s*allow ([a-z][\w-]* .+)$", script, flags=re.MULTILINE)
    for line in lines:
        principal, operation, kind, name, *pattern = line.split()
        granted.setdefault(principal, set()).add((operation, kind, name, pattern[0] if pattern else "literal"))
    return granted


def allowed(principal: str, operation: str, kind: str, name: str) -> bool:
    for op, k, pattern, pattern_type in acls().get(principal, ()):
        if op == operation and k == kind and (name == pattern if pattern_type == "literal" else
                                              name.startswith(pattern)):
            return True
    return False


def test_each_role_may_do_its_job_and_nothing_more(monkeypatch):
    settings = settings_of("worker", monkeypatch)
    from bankguard.topics import Topics
    topics = Topics(settings.topics.prefix)
    every = [spec.name for spec in bankguard_topics(settings)]
    scenario = list(topics.scenario_topics.values())
    may = {
        "producer": {"Write": [*scenario, topics.truth]},
        "worker": {"Read": [*scenario, topics.rules_control, topics.state_changelog],
                   "Write": [topics.alerts, topics.cases, topics.dlq, topics.rules_audit, topics.state_changelog]},
        "rules-publisher": {"Write": [topics.rules_control]},
        "alerts-reader": {"Read": [topics.alerts, topics.cases]},
        "investigations": {"Read": [topics.cases, topics.truth, topics.outcomes, *scenario],
                           "Write": [topics.outcomes]},
        "evaluator": {"Read": [topics.alerts, topics.outcomes, *scenario]},
    }
    assert set(acls()) == set(may) and set(scram_users()) == set(may) | {"admin"}
    for principal, operations in may.items():
        for topic in every:
            assert allowed(principal, "Describe", "topic", topic), f"{principal} cannot see {topic}"
            for operation in ("Read", "Write"):
                assert allowed(principal, operation, "topic", topic) == (topic in operations.get(operation, [])), \
                    f"{principal} {operation} {topic}"
        for _, kind, _, _ in acls()[principal]:
            assert kind in ("topic", "group")
    assert allowed("worker", "Read", "group", topics.worker_group)
    assert allowed("worker", "Read", "group", f"{settings.topics.prefix}-rules-watcher")
    assert allowed("alerts-reader", "Read", "group", "alerts-case-management")
    assert allowed("investigations", "Describe", "group", topics.worker_group)  # the workers' committed offsets
    assert not allowed("investigations", "Read", "group", topics.worker_group)
    assert not allowed("producer", "Read", "group", topics.worker_group)


def test_prometheus_lifecycle_and_admin_apis_are_off():
    """In compose, and in the embedded stack (any local user could stop it with a POST)."""
    from bankguard.monitoring import prometheus_argv
    embedded = prometheus_argv("prometheus", Path("p.yml"), Path("data"), "127.0.0.1:9090")
    for argv in (command("prometheus"), embedded):
        assert not any(arg.startswith(("--web.enable-lifecycle", "--web.enable-admin-api")) for arg in argv)


def test_grafana_has_no_anonymous_access():
    env = environment("grafana")
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert env["GF_USERS_ALLOW_SIGN_UP"] == "false"
    compose_variable(env["GF_SECURITY_ADMIN_PASSWORD"])


def test_workers_accept_rules_signed_by_reviewed_keys_only(monkeypatch):
    settings = settings_of("worker", monkeypatch)
    assert settings.rules.trusted_keys is not None, "workers would trust a key they make themselves"
    assert host_path("worker", str(settings.rules.trusted_keys)) == REPO / "compose" / "rules-keys"
    assert settings.rules.signing_key is None, "workers never hold a signing key"


def test_the_example_env_names_every_required_variable():
    required = set(re.findall(r"\$\{(\w+):\?", (REPO / "docker-compose.yml").read_text()))
    example = REPO / "compose" / "example.env"
    named = {line.split("=", 1)[0] for line in example.read_text().splitlines() if line and not line.startswith("#")}
    assert required == named


@pytest.mark.broker
def test_the_tls_init_makes_a_keystore_the_broker_and_its_clients_agree_on(tmp_path):
    """Run compose/make_tls.py here: the keystore opens with the password (and in the JDK's
    keytool), and a TLS handshake for each broker name verifies against ca.crt alone."""
    import ssl
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, pkcs12

    assert command("tls-init")[1] == "/opt/compose/make_tls.py"
    assert host_path("tls-init", command("tls-init")[1]) == REPO / "compose" / "make_tls.py"
    assert host_path("tls-init", command("tls-init")[2]) == REPO / "compose" / "tls"
    password = "a-test-password-0123"
    env = os.environ | {"KAFKA_TLS_PASSWORD": password}
    make = [os.sys.executable, str(REPO / "compose" / "make_tls.py"), str(tmp_path / "tls")]
    assert subprocess.run(make, env=env, capture_output=True, timeout=60).returncode == 0
    keystore = (tmp_path / "tls" / "kafka.p12").read_bytes()
    assert oct((tmp_path / "tls" / "kafka.p12").stat().st_mode & 0o777) == "0o600"
    again = subprocess.run(make, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "kept" in again.stdout
    assert (tmp_path / "tls" / "kafka.p12").read_bytes() == keystore, "a rerun must not rotate the certificates"
    assert subprocess.run(make, env=os.environ | {"KAFKA_TLS_PASSWORD": ""}, capture_output=True,
                          timeout=60).returncode != 0

    key, cert, _ = pkcs12.load_key_and_certificates(keystore, password.encode())
    (tmp_path / "broker.pem").write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
                                          + cert.public_bytes(Encoding.PEM))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "broker.pem")
    client = ssl.create_default_context(cafile=tmp_path / "tls" / "ca.crt")
    for name in ("kafka", "localhost"):
        handshake(server, client, name)
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(server, client, "attacker.example")

    keytool = shutil.which("keytool")
    if keytool is None:
        pytest.fail("keytool (a JDK) not on PATH: the broker's JVM must read this keystore")
    listed = subprocess.run([keytool, "-list", "-keystore", str(tmp_path / "tls" / "kafka.p12"), "-storetype",
                             "PKCS12", "-storepass", password], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and "PrivateKeyEntry" in listed.stdout, listed.stdout + listed.stderr


def handshake(server_context, client_context, name: str) -> None:
    """A TLS handshake in memory: the client verifies the server's certificate for ``name``."""
    import ssl
    server_in, server_out, client_in, client_out = (ssl.MemoryBIO() for _ in range(4))
    server = server_context.wrap_bio(server_in, server_out, server_side=True)
    client = client_context.wrap_bio(client_in, client_out, server_hostname=name)
    done = {"client": False, "server": False}
    for _ in range(20):
        for side, tls, outgoing, peer_in in (("client", client, client_out, server_in),
                                             ("server", server, server_out, client_in)):
            if not done[side]:
                try:
                    tls.do_handshake()
                    done[side] = True
                except ssl.SSLWantReadError:
                    pass
            peer_in.write(outgoing.read())
        if all(done.values()):
            return
    raise AssertionError("handshake did not finish")


@pytest.mark.broker
@pytest.mark.parametrize("service", [name for name in SERVICES
                                     if SERVICES[name].get("entrypoint", [])[:2] == ["/bin/bash", "-euc"]])
def test_shell_scripts_parse(service):
    """``bash -n`` on the script as the container runs it (compose turns ``$$`` into ``$``)."""
    script = command(service)[-1].replace("$$", "$")
    result = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
