"""Every override of Faust's and aiokafka's internals, in one place, pinned to the versions read.

The worker reaches into Faust (faust-streaming) and aiokafka where they offer no public hook:

- ``AIOKafkaConsumerThread._create_worker_consumer``: Faust hard-codes ``fetch_max_wait_ms=1500``
  for its worker consumer; the broker may hold a fetch for most of that even when data is ready,
  which puts ~1 s of latency on every event. The configured wait is set on aiokafka's consumer
  (private ``_fetch_max_wait_ms``, read when its fetcher is built at ``start()``).
- ``Consumer._handle_attached``: Faust awaits it after the offsets to commit are chosen and before
  they are committed; the worker's commit point (alerts acknowledged, state written) runs there.
- ``Consumer._drain_messages``: Faust's fetch loop creates four tasks per message, which capped a
  worker at about 5,000 events/s; the copy here hands messages over by a plain ``await``. Its gaps
  start past the highest offset handed over since the last rebalance: recovery seeks the stream
  partitions to their committed offsets (``Recovery.on_recovery_completed``) while a fetch taken
  before the seek is still being handed over, and upstream took the rest of that fetch for a jump
  past the reset read offset. The "gap" covered records already handed over, which were then acked
  twice, and ``Consumer._new_offset`` advanced the commit by one offset per commit interval.
- ``Consumer._new_consumer_thread``: builds the consumer thread that carries the fetch wait.
- ``Table.persisted_offset``: where recovery of a changelog partition starts; the latest snapshot
  (see :mod:`~bankguard.stream_agents.snapshots`) instead of the beginning.
- ``App._new_web``: a web server without Faust's unauthenticated views.
- ``App.flow_control`` and mode's ``FlowControlEvent.resume``: upstream clears every stream buffer
  on each resume, also when the flow was already on. Recovery resumes it a second time after
  seeking the stream partitions: events fetched between that seek and the resume were cleared
  from the buffers while their offsets were already fetched past, so they were never scored and
  their partitions never committed again. Buffers are cleared only when a suspended flow resumes.

Settings reach the transport as one typed :class:`TransportOptions` (``WorkerApp.use_transport_options``).

Each override names the upstream function it mirrors. They were written against exactly
:data:`PINNED`; :func:`check_versions` (run by the worker before it starts) refuses any other
installed version in one line, and ``tests/test_faust_seam.py`` fails if any override stops
taking effect.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import aiokafka
import faust
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from mode import Service, ServiceT
from mode.utils.objects import cached_property
from mode.utils.queues import FlowControlEvent

from bankguard.errors import BankguardError
from bankguard.stream_agents.snapshots import SnapshotIndex
from bankguard.stream_agents.web import MetricsOnlyWeb

# The versions the overrides mirror.
PINNED = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0", "mode-streaming": "0.7.1"}

DEFAULT_FETCH_MAX_WAIT_MS = 25
YIELD_EVERY = 64  # messages handed over between two turns of the event loop
DRAIN_POLL_S = 0.001  # how often a full stream buffer is checked for room
NOTHING_HANDED_OVER = (-1, -1)  # (rebalance count, offset) of a partition with nothing handed over

FETCH_WAIT_ATTRIBUTE = "_fetch_max_wait_ms"  # aiokafka 0.14 AIOKafkaConsumer.__init__ stores it here

CommitHook = Callable[[], Awaitable[None]]


class SeamError(BankguardError):
    """Faust or aiokafka is not what the overrides were written for: refuse to run on guesses."""


def check_versions(installed: Callable[[str], str] = importlib.metadata.version) -> None:
    """Raise :class:`SeamError` (one line) unless the installed Faust, mode and aiokafka are :data:`PINNED`."""
    wrong = []
    for package, pinned in PINNED.items():
        try:
            version = installed(package)
        except importlib.metadata.PackageNotFoundError:
            version = "not installed"
        if version != pinned:
            wrong.append(f"{package} {version} (overrides written for {pinned})")
    if wrong:
        raise SeamError("unsupported " + ", ".join(wrong) + "; install the pinned versions")


@dataclass(frozen=True)
class TransportOptions:
    """What the worker's transport needs from the app, typed, handed over when the app builds it.

    ``commit_point`` runs after Faust has chosen the offsets to commit and before it commits
    them (``None``: nothing extra to make durable).
    """

    fetch_max_wait_ms: int = DEFAULT_FETCH_MAX_WAIT_MS
    commit_point: CommitHook | None = None


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        """Mirrors faust 0.15.3 ``AIOKafkaConsumerThread._create_worker_consumer`` (which passes
        ``fetch_max_wait_ms=1500``), then applies the configured wait."""
        consumer = super()._create_worker_consumer(transport)
        if not hasattr(consumer, FETCH_WAIT_ATTRIBUTE):  # renamed upstream: latency would silently return
            raise SeamError(f"aiokafka's consumer has no {FETCH_WAIT_ATTRIBUTE}; the fetch wait cannot be set")
        options = cast(Transport, transport).options
        setattr(consumer, FETCH_WAIT_ATTRIBUTE, options.fetch_max_wait_ms)  # no public setter after init
        return consumer


class Consumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with the commit point and the lean fetch loop.

    ``commit_points_run``, ``lean_handoffs`` and ``stale_handoffs`` count what the overrides did,
    so a test can see that Faust still calls them.
    """

    commit_points_run = 0
    lean_handoffs = 0
    stale_handoffs = 0  # fetches cut short by a rebalance

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Per input partition: the rebalance count and the highest offset handed over since. A seek
        # lowers the read offset; what was handed over above it is no gap (see _drain_messages).
        self.handed_over: dict[TP, tuple[int, int]] = {}

    def _new_consumer_thread(self) -> ConsumerThread:
        """Mirrors faust 0.15.3 ``faust.transport.drivers.aiokafka.Consumer._new_consumer_thread``."""
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _handle_attached(self, commit_offsets: Mapping[TP, int]) -> None:
        """Mirrors faust 0.15.3 ``faust.transport.consumer.Consumer._handle_attached``, which
        ``_commit_tps`` awaits before ``_commit_offsets``: the commit point runs there, so offsets
        are never committed ahead of what their events produced (a ``ProducerSendError`` it
        raises makes Faust crash the worker instead of committing)."""
        await super()._handle_attached(commit_offsets)
        commit_point = cast(Transport, self.transport).options.commit_point
        if commit_point is not None:
            await commit_point()
            self.commit_points_run += 1

    async def _drain_messages(self, fetcher: ServiceT) -> None:  # pragma: no cover - the fetch loop
        """Mirrors faust 0.15.3 ``faust.transport.consumer.Consumer._drain_messages``, with two
        changes. While the flow is on and the stream buffers of a message's topic have room, the
        message is handed over by a plain ``await`` (which then cannot block), yielding to the
        event loop every ``YIELD_EVERY`` messages. Otherwise it runs as a task raced against the
        flow-suspension event, as Faust always does. Faust's ``wait_first`` creates four tasks per
        message. A message handed over across the start of a rebalance is not marked read, which
        upstream does (see below).

        And a gap (offsets that will never arrive, which ``Consumer._new_offset`` counts as acked) is
        recorded only past the highest offset handed over since the last rebalance, not past the
        read offset alone, and without the record that revealed it (upstream's range holds that
        record too, which is then acked twice). Faust 0.15.3 ``Recovery.on_recovery_completed``
        resumes the stream partitions and then awaits ``Consumer.perform_seek``, which resets their
        read offsets to the committed ones while the rest of a fetch taken before the seek is still
        being handed over: upstream reads its next record as a jump past the reset read offset and
        records as a gap offsets that were handed over and will be acked. Each of them is then twice
        in ``_acked``, ``consecutive_numbers`` splits the run at every repeat, and the committed
        offset advances by one per commit interval. Nothing handed over within one rebalance is
        dropped from the stream buffers (:class:`KeepingFlowControl`), so those offsets are acked
        in turn and no gap may stand for them; a rebalance clears the buffers, and what was handed
        over before it no longer counts."""
        callback, getmany = self.callback, self.getmany
        consumer_should_stop = cast(Service, self)._stopped.is_set  # noqa: SLF001 - as upstream's loop reads it
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set  # noqa: SLF001 - as upstream's loop reads it
        # self access needs no noqa: _read_offset, _n_acked, _add_gap are this consumer's own (inherited)
        get_read_offset, set_read_offset = self._read_offset.__getitem__, self._read_offset.__setitem__
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        flow_is_active = self.app.flow_control.is_active
        channels_of = cast(Any, self.app.topics)._topic_name_index.get  # noqa: SLF001 - the conductor's index
        handed_over = self.handed_over
        app = self.app
        handed = 0
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                self.diag.set_flag(CONSUMER_FETCHING)
                rebalances = app.rebalancing_count  # a rebalance since the fetch began voids it
                ait = cast(AsyncIterator, getmany(timeout=1.0))
                await asyncio.sleep(0)  # getmany may return at once, again and again
                if not self.should_stop:
                    async for tp, message in ait:
                        if app.rebalancing_count != rebalances:
                            await self._refetch_after_rebalance()
                            break
                        offset = message.offset
                        read = get_read_offset(tp)
                        if read is not None and offset < read:
                            continue  # already delivered (Faust drops these too)
                        handed_in, highest = handed_over.get(tp, NOTHING_HANDED_OVER)
                        if handed_in != rebalances:
                            highest = -1  # handed over before a rebalance: cleared from the buffers
                        last = max(read or 0, highest)  # the gap starts past it, not past the read offset alone
                        if read and offset - last > 1 and acks_enabled_for(message.topic):
                            await self._add_gap(tp, last + 1, offset - 1)  # offset itself is handed over
                        if commit_every is not None and self._n_acked >= commit_every:
                            self._n_acked = 0
                            await self.commit()
                        if flow_is_active() and not any(c.queue.full() for c in channels_of(message.topic, ())):
                            await callback(message)
                            handed += 1
                            if handed % YIELD_EVERY == 0:
                                await asyncio.sleep(0)
                        else:
                            await self.wait_first(callback(message), self.suspend_flow.wait())
                            await self._until_drained(channels_of(message.topic, ()))
                        if not flow_is_active() or app.rebalancing_count != rebalances:
                            # A rebalance began while the message was handed over (upstream marks it
                            # read anyway): the revocation reset this partition's read offset, and
                            # marking it now would make the next assignment skip every message up
                            # to it: never scored, never acknowledged, so its partition never
                            # commits again. The rest of this fetch is from before it too. Counted,
                            # not compared by generation: the embedded broker can rebalance a group
                            # without changing its generation.
                            await self._refetch_after_rebalance()
                            break
                        set_read_offset(tp, offset)
                        if offset > highest:
                            handed_over[tp] = (rebalances, offset)
                    self.lean_handoffs += handed
                    handed = 0
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)  # as upstream: the crash says why
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _refetch_after_rebalance(self) -> None:
        """Drop the rest of a fetch that a rebalance overtook. Its records are read again: by the
        seek to the committed offsets that ends the rebalance, or, if that seek already ran (the
        flow is on again), by seeking now (records between are scored twice, which is safe)."""
        self.stale_handoffs += 1
        if self.app.flow_control.is_active():
            await self.perform_seek()

    async def _until_drained(self, channels: Iterable[Any]) -> None:
        """After a message waited for room: wait until the streams have drained their buffers to
        Faust's pressure-drop level (or the flow stops), so the next messages take the fast path
        instead of each waiting for one freed slot."""
        flow_is_active = self.app.flow_control.is_active
        channels = list(channels)
        # Faust's queues signal no "drained" event to wait on, so this polls.
        while flow_is_active() and any(c.queue.qsize() > c.queue.pressure_drop_size for c in channels):  # noqa: ASYNC110
            await asyncio.sleep(DRAIN_POLL_S)


class Transport(faust_aiokafka.Transport):
    """The ``bankguard://`` transport: Faust's aiokafka transport with :class:`Consumer`.

    Faust builds it through the entry point (``faust.transports``) with default options; a
    :class:`WorkerApp` hands it the app's own before the consumer is created.
    """

    Consumer = Consumer

    def __init__(self, url: Any, app: Any, loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(url, app, loop=loop)
        self.options = TransportOptions()
        self._consumer_created = False

    def configure(self, options: TransportOptions) -> None:
        """Replace the options; only before the consumer exists (it reads them when it starts)."""
        if self._consumer_created:
            raise SeamError("transport options must be set before the worker's consumer is created")
        self.options = options

    def create_consumer(self, callback: Any, **kwargs: Any) -> Any:
        self._consumer_created = True
        return super().create_consumer(callback, **kwargs)


class KeepingFlowControl(FlowControlEvent):
    """Flow control whose resume keeps what the stream buffers hold when the flow was already on."""

    def resume(self) -> None:
        """Mirrors mode-streaming 0.7.1 ``FlowControlEvent.resume``, which clears the managed
        queues every time. Only a suspended flow held stale events (fetched before a rebalance,
        read again after the seek that ends it); events buffered while the flow was on are
        current, and dropping them loses them."""
        was_suspended = not self.is_active()
        self._suspend.clear()
        self._resume.set()
        if was_suspended:
            self.clear()


class WorkerApp(faust.App):
    """A Faust app whose transport gets typed :class:`TransportOptions`, whose stream buffers
    survive a resume of a flow that is on (:class:`KeepingFlowControl`) and whose web server
    carries only the pages the worker registers.

    Faust builds the transport (from the ``bankguard://`` broker URL, through the entry point) as
    soon as a topic is declared, before the commit point (which needs the table) exists:
    :meth:`use_transport_options` hands the options to it later, until the consumer is created.
    """

    def use_transport_options(self, options: TransportOptions) -> None:
        transport = self.transport
        if not isinstance(transport, Transport):
            raise SeamError(f"the worker app needs the bankguard:// transport, not {type(transport).__name__}")
        transport.configure(options)

    @cached_property
    def flow_control(self) -> FlowControlEvent:
        """Mirrors faust 0.15.3 ``App.flow_control`` (``FlowControlEvent(loop=self.loop)``)."""
        return KeepingFlowControl(loop=self.loop)

    def _new_web(self) -> MetricsOnlyWeb:
        """Mirrors faust 0.15.3 ``faust.App._new_web`` (``web_drivers.by_url(conf.web)(app)``)."""
        return MetricsOnlyWeb(self)


class SnapshotTable(faust.Table):
    """A table whose changelog recovery starts at the latest snapshot of each partition."""

    def __init__(self, app: faust.App, *, index: SnapshotIndex, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.snapshot_index = index

    def persisted_offset(self, tp: TP) -> int | None:
        """Mirrors faust 0.15.3 ``faust.tables.base.Collection.persisted_offset`` (the store's
        offset; ``None`` for the memory store: recover from the beginning). Recovery seeks to the
        offset returned and reads on, but skips a partition whose end is just past it: one before
        the snapshot's start makes sure the snapshot is read."""
        start = self.snapshot_index.latest(tp.partition)
        return start - 1 if start else None
