"""The Faust application: the scoring worker.

Events arrive in batches (``stream.take_events``); each batch is validated, scored
against per-entity state (a Faust table) by the rules and models, and its alerts and
dead letters are sent at once. Before Faust commits input offsets, the commit point
waits for those to be acknowledged and then writes the state they came from: processing
is at-least-once, and alert ids make re-deliveries harmless.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, cast

import aiohttp.web
import numpy as np
import faust
from faust.sensors.monitor import Monitor
from faust.types import TP, EventT, Message, StreamT
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bankguard import __version__
from bankguard.kafka import arrival_ms
from bankguard.settings import KafkaSettings, Settings
from bankguard.topics import Topics
from bankguard.stream_agents.metrics import WorkerMetrics

if TYPE_CHECKING:
    from bankguard.stream_agents.model_stage import ForecastStage, ModelStage
from bankguard.stream_agents.rules_control import RulesWatcher
from bankguard.stream_agents.scoring import Incoming, StreamScorer
from bankguard.stream_agents.sink import BatchSink, CommitPoint
from bankguard.stream_agents.sink_metrics import CHECK_INTERVAL_S, SinkWatch
from bankguard.stream_agents.state import TABLE_NAME, StateStore
from bankguard.stream_agents.faust_seam import SnapshotTable, TransportOptions, WorkerApp
from bankguard.stream_agents.snapshots import SnapshotIndex, SnapshotPolicy
from bankguard.stream_agents.web import add_health_page

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


class QuietMonitor(Monitor):
    """Faust's monitor without its per-message and per-event bookkeeping: the worker exports
    its own Prometheus metrics, and those hooks cost several microseconds per event."""

    def on_message_in(self, tp: TP, offset: int, message: Message) -> None:
        return None

    def on_stream_event_in(self, tp: TP, offset: int, stream: StreamT, event: EventT) -> dict | None:
        return None

    def on_stream_event_out(self, tp: TP, offset: int, stream: StreamT, event: EventT,
                            state: dict | None = None) -> None:
        return None

    def on_message_out(self, tp: TP, offset: int, message: Message) -> None:
        return None


def broker_urls(kafka: KafkaSettings) -> list[str]:
    return [f"bankguard://{server.strip()}" for server in kafka.bootstrap_servers.split(",")]


def create_app(settings: Settings, watcher: RulesWatcher) -> faust.App:
    """Build the worker app for these settings (topics, group id, web port, metrics).

    ``watcher`` supplies the live rules configuration; start it before the worker so
    the first batch is scored with the published configuration.
    """
    topics = Topics(settings.topics.prefix)
    credentials, _ = faust_credentials(settings.kafka)
    worker = settings.worker
    app = WorkerApp(  # serves /metrics and /health only
        topics.worker_group,
        broker=broker_urls(settings.kafka),
        broker_credentials=credentials,
        broker_session_timeout=settings.kafka.session_timeout_s,
        broker_heartbeat_interval=min(1.0, settings.kafka.session_timeout_s / 3),
        broker_max_poll_records=worker.max_poll_records,
        broker_commit_interval=worker.commit_interval_s,
        consumer_auto_offset_reset="earliest",
        topic_partitions=settings.topics.partitions,
        topic_allow_declare=False,
        topic_disable_leader=True,  # no leader election used; a real Kafka would not auto-create it
        key_serializer="raw",
        value_serializer="raw",
        datadir=str(worker.data_dir / f"port-{worker.web_port}"),
        web_port=worker.web_port,
        web_bind=worker.web_bind,
        web_in_thread=False,
        store="memory://",
        monitor=QuietMonitor(),
    )
    metrics = WorkerMetrics()
    metrics.build.info({"version": __version__})

    scenario_of = {topic: key for key, topic in topics.scenario_topics.items()}
    source = app.topic(*scenario_of, key_type=bytes, value_type=bytes)
    snapshots = SnapshotPolicy(SnapshotIndex(settings, topics.state_changelog))
    table = SnapshotTable(app, index=snapshots.index, name=TABLE_NAME, key_type=bytes, value_type=bytes,
                          partitions=settings.topics.partitions, beacon=app.beacon)
    app.tables.add(table)  # what app.Table does, with the table class that recovers from snapshots
    store = StateStore(table.data)
    sink = BatchSink(settings)
    sink_watch = SinkWatch(sink)
    metrics.registry.register(sink_watch)
    changelog = table.changelog_topic.get_topic_name()
    assert changelog == topics.state_changelog, changelog  # created up front by ensure_topics
    commit_point = CommitPoint(sink, store, changelog, snapshots)
    app.use_transport_options(TransportOptions(fetch_max_wait_ms=worker.fetch_max_wait_ms,
                                               commit_point=commit_point))
    watcher.on_change = metrics.rules_changed
    watcher.on_reject = lambda reason: metrics.rules_rejected.inc()  # the watcher dead-letters it
    metrics.rules_changed(watcher.config)
    models, forecast = load_models(settings, metrics)
    scorer = StreamScorer(store, lambda: watcher.config, models,
                          case_window_ms=int(settings.worker.case_window_hours * 3_600_000))

    app.on_partitions_revoked.connect(revoke_handler(commit_point, store, snapshots, metrics))  # type: ignore[arg-type]

    @app.timer(CHECK_INTERVAL_S)
    async def watch_sink() -> None:
        sink_watch.check()  # an outage is logged and exported while the worker waits it out

    async def handle(batch: Sequence[EventT]) -> None:
        await sink.wait_for_room()  # back-pressure: no new batch while the broker holds a full sink
        incoming = [
            Incoming(scenario_of[e.message.topic], e.message.topic, e.message.partition, e.message.offset,
                     e.message.key, e.message.value or b"",  # a tombstone is malformed input
                     int(e.message.timestamp * 1000) if e.message.timestamp else None,
                     arrival_ms(e.message.headers))
            for e in batch
        ]
        scored = scorer.score(incoming)
        for rejected in scored.dead_letters:
            sink.send(topics.dlq, rejected.key, rejected.value, headers=rejected.letter.headers())
            metrics.rejected.labels(rejected.scenario, rejected.letter.reason).inc()
        for alert in scored.alerts:
            sink.send(topics.alerts, alert.key, alert.value, headers=alert.headers)
        for case in scored.cases:
            sink.send(topics.cases, case.key, case.value, headers=case.headers)
        sink.poll()
        done = time.time()
        for scenario, count in scored.valid.items():
            metrics.events.labels(scenario).inc(count)
        for alert in scored.alerts:
            metrics.alerts.labels(alert.scenario, alert.detector, alert.severity).inc()
        for scenario, times_ms in scored.arrivals_ms.items():
            metrics.latency.observe(np.maximum(0.0, done - np.asarray(times_ms) / 1000), scenario)
        metrics.batch_size.observe(len(batch))
        for scenario, flags in scored.high_risk.items():
            metrics.record_risk(scenario, flags)
            if forecast is not None:
                forecast.observe(scenario, flags)
        last = {(e.message.topic, e.message.partition): e.message.offset for e in batch}
        for (topic, partition), offset in last.items():
            highwater = app.consumer.highwater(TP(topic, partition))
            if highwater is not None:
                metrics.record_lag(topic, partition, highwater - offset - 1)

    @app.agent(source, name="score")
    async def score(stream: faust.StreamT) -> None:
        # take_events is on faust's Stream class, not on the StreamT interface
        async for batch in cast(faust.Stream, stream).take_events(BATCH_MAX, within=BATCH_WITHIN_S):
            await handle(batch)

    @app.page("/metrics")  # type: ignore[arg-type]  # faust types a page as a View method
    async def metrics_page(web: faust.web.Web, request: faust.web.Request) -> aiohttp.web.Response:
        # A plain aiohttp response: Faust's helper cannot carry the exposition
        # format's full content type (version and charset).
        metrics.state_entities.set(len(table.data))
        return aiohttp.web.Response(body=generate_latest(metrics.registry),
                                    headers={"Content-Type": CONTENT_TYPE_LATEST})

    add_health_page(app)
    return app


def revoke_handler(commit_point: CommitPoint, store: StateStore, snapshots: SnapshotPolicy,
                   metrics: WorkerMetrics) -> Callable[..., Awaitable[None]]:
    """The receiver of Faust's ``on_partitions_revoked``: make everything scored durable before the
    partitions move (the next owner recovers the state from the changelog), then drop the cache."""

    async def flush_state(app: faust.App, revoked: set[TP], **kwargs: object) -> None:
        await commit_point()  # nothing scored is lost with the cache
        store.forget()  # the table is the truth after a rebalance
        snapshots.forget()  # its partitions' changelogs are recounted when they are written again
        metrics.partitions_revoked()

    return flush_state


def load_models(settings: Settings, metrics: WorkerMetrics) -> tuple[ModelStage | None, ForecastStage | None]:
    """The verified model artifacts, or nothing when models are disabled.

    A missing, tampered or mismatched artifact raises here, before the worker joins its
    group: it refuses to score with a model that does not match its features.
    """
    if not settings.models.enabled:
        return None, None
    from bankguard.models.arena import ArenaCollector
    from bankguard.models.forecast import Forecaster
    from bankguard.models.registry import default_dir
    from bankguard.models.scoring import ModelScorer
    from bankguard.stream_agents.model_stage import ForecastStage, ModelStage

    root = settings.models.dir or default_dir()
    stage = ModelStage(ModelScorer(root, shadows=settings.models.shadows), metrics,
                       drift_window=settings.models.drift_window, drift_min_scores=settings.models.drift_min_scores,
                       shadow_every=settings.models.shadow_every)
    metrics.registry.register(ArenaCollector(root))
    forecast = ForecastStage(Forecaster(root), metrics, settings.models.forecast_interval_s)
    return stage, forecast
