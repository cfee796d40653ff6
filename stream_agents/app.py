"""The Faust application: consumes every scenario topic, validates, counts, dead-letters.

Events arrive in batches (``stream.take_events``): per-batch work is where the scoring
engine adds its state and detectors. Faust acknowledges a batch's offsets only after
the loop body finished with it, so processing is at-least-once.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Sequence

import aiohttp.web
import faust
from faust.types import EventT
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bankguard import __version__
from bankguard.events import InvalidEvent, parse_event
from bankguard.settings import KafkaSettings, Settings
from bankguard.topics import Topics
from bankguard.stream_agents.dead_letters import DeadLetter
from bankguard.stream_agents.metrics import WorkerMetrics

log = logging.getLogger(__name__)

BATCH_MAX = 1_000
BATCH_WITHIN_S = 0.01


def faust_credentials(kafka: KafkaSettings) -> tuple[faust.types.auth.CredentialsT | None, ssl.SSLContext | None]:
    """Translate the shared Kafka settings into Faust's credentials and TLS context."""
    context = None
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(
            cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None
        )
        if kafka.ssl_certfile:
            context.load_cert_chain(str(kafka.ssl_certfile),
                                    str(kafka.ssl_keyfile) if kafka.ssl_keyfile else None)
    if kafka.sasl_mechanism is None:
        return (faust.SSLCredentials(context) if context else None), context
    password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else ""
    mechanism = {"PLAIN": "PLAIN", "SCRAM-SHA-256": "SCRAM-SHA-256",
                 "SCRAM-SHA-512": "SCRAM-SHA-512"}[kafka.sasl_mechanism]
    credentials = faust.SASLCredentials(
        username=kafka.sasl_username, password=password, mechanism=mechanism, ssl_context=context
    )
    return credentials, context


def broker_urls(kafka: KafkaSettings) -> list[str]:
    return [f"bankguard://{server.strip()}" for server in kafka.bootstrap_servers.split(",")]


def create_app(settings: Settings) -> faust.App:
    """Build the worker app for these settings (topics, group id, web port, metrics)."""
    topics = Topics(settings.topics.prefix)
    credentials, _ = faust_credentials(settings.kafka)
    worker = settings.worker
    app = faust.App(
        f"{settings.topics.prefix}-worker",
        broker=broker_urls(settings.kafka),
        broker_credentials=credentials,
        broker_session_timeout=settings.kafka.session_timeout_s,
        broker_heartbeat_interval=min(1.0, settings.kafka.session_timeout_s / 3),
        broker_max_poll_records=worker.max_poll_records,
        consumer_auto_offset_reset="earliest",
        topic_partitions=settings.topics.partitions,
        topic_allow_declare=False,
        key_serializer="raw",
        value_serializer="raw",
        datadir=str(worker.data_dir / f"port-{worker.web_port}"),
        web_port=worker.web_port,
        web_bind="127.0.0.1",
        web_in_thread=False,
        store="memory://",
    )
    app.fetch_max_wait_ms = worker.fetch_max_wait_ms  # read by our transport
    metrics = WorkerMetrics()
    metrics.build.info({"version": __version__})
    app.bankguard_metrics = metrics

    scenario_of = {topic: key for key, topic in topics.scenario_topics.items()}
    source = app.topic(*scenario_of, key_type=bytes, value_type=bytes)
    dlq = app.topic(topics.dlq, key_type=bytes, value_type=bytes)

    async def dead_letter(event: EventT, scenario: str, error: InvalidEvent) -> None:
        message = event.message
        letter = DeadLetter(error.reason, error.detail, message.topic, message.partition,
                            message.offset, int(message.timestamp * 1000) if message.timestamp else None)
        await dlq.send(key=message.key, value=message.value, headers=letter.headers())
        metrics.rejected.labels(scenario, error.reason).inc()

    async def handle(batch: Sequence[EventT]) -> None:
        counts: dict[str, int] = {}
        for event in batch:
            scenario = scenario_of[event.message.topic]
            try:
                parse_event(scenario, event.value)
            except InvalidEvent as error:
                await dead_letter(event, scenario, error)
                continue
            counts[scenario] = counts.get(scenario, 0) + 1
        for scenario, count in counts.items():
            metrics.events.labels(scenario).inc(count)

    @app.agent(source, name="validate")
    async def validate(stream: faust.StreamT) -> None:
        async for batch in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
            await handle(batch)

    @app.page("/metrics")
    async def metrics_page(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
        # A plain aiohttp response: Faust's helper cannot carry the exposition
        # format's full content type (version and charset).
        return aiohttp.web.Response(body=generate_latest(metrics.registry),
                                    headers={"Content-Type": CONTENT_TYPE_LATEST})

    return app
