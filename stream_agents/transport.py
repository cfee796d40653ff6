"""Faust's aiokafka transport with a configurable consumer fetch wait, a leaner fetch loop
and a commit point.

Faust 0.15 hard-codes ``fetch_max_wait_ms=1500`` for its worker consumer; the broker
may hold a fetch for most of that even when data is ready, which puts ~1 s of latency
on every event. This transport (URL scheme ``bankguard://``) applies the app's
``fetch_max_wait_ms`` instead, hands fetched messages to the streams without Faust's
four tasks per message (see ``Consumer._drain_messages``), and awaits the app's
``commit_point`` (if it has one) after the offsets to commit are chosen and before they
are committed, as Faust does for its own attached messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, cast

import aiokafka
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from mode import Service, ServiceT

DEFAULT_FETCH_MAX_WAIT_MS = 25
YIELD_EVERY = 64  # messages handed over between two turns of the event loop

DRAIN_POLL_S = 0.001  # how often a full stream buffer is checked for room

CommitPoint = Callable[[], Awaitable[None]]


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka reads this attribute when it builds its fetcher at start().
        consumer._fetch_max_wait_ms = getattr(  # noqa: SLF001 - aiokafka 0.12 has no public setter after init
            self.app, "fetch_max_wait_ms", DEFAULT_FETCH_MAX_WAIT_MS
        )
        return consumer


class Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _handle_attached(self, commit_offsets: Mapping[TP, int]) -> None:
        await super()._handle_attached(commit_offsets)
        commit_point: CommitPoint | None = getattr(self.app, "commit_point", None)
        if commit_point is not None:
            await commit_point()

    async def _drain_messages(self, fetcher: ServiceT) -> None:  # pragma: no cover - the fetch loop
        """Faust's fetch loop, with one change: while the flow is on and the stream buffers of a
        message's topic have room, the message is handed over by a plain ``await`` (which then
        cannot block), yielding to the event loop every ``YIELD_EVERY`` messages. Otherwise it
        runs as a task raced against the flow-suspension event, as Faust always does. Faust's
        ``wait_first`` creates four tasks per message, which capped a worker at about 5,000
        events/s; the semantics under back-pressure and rebalancing are unchanged."""
        callback, getmany = self.callback, self.getmany
        consumer_should_stop = cast(Service, self)._stopped.is_set  # noqa: SLF001 - as upstream's loop reads it
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set  # noqa: SLF001 - as upstream's loop reads it
        get_read_offset, set_read_offset = self._read_offset.__getitem__, self._read_offset.__setitem__
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        flow_is_active = self.app.flow_control.is_active
        channels_of = cast(Any, self.app.topics)._topic_name_index.get  # noqa: SLF001 - the conductor's index
        handed = 0
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                self.diag.set_flag(CONSUMER_FETCHING)
                ait = cast(AsyncIterator, getmany(timeout=1.0))
                await asyncio.sleep(0)  # getmany may return at once, again and again
                if not self.should_stop:
                    async for tp, message in ait:
                        offset = message.offset
                        read = get_read_offset(tp)
                        if read is not None and offset < read:
                            continue  # already delivered (Faust drops these too)
                        if read and offset - read > 1 and acks_enabled_for(message.topic):
                            await self._add_gap(tp, read + 1, offset)
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
                        set_read_offset(tp, offset)
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _until_drained(self, channels: Any) -> None:
        """After a message waited for room: wait until the streams have drained their buffers to
        Faust's pressure-drop level (or the flow stops), so the next messages take the fast path
        instead of each waiting for one freed slot."""
        flow_is_active = self.app.flow_control.is_active
        # Faust's queues signal no "drained" event to wait on, so this polls.
        while flow_is_active() and any(c.queue.qsize() > c.queue.pressure_drop_size for c in channels):  # noqa: ASYNC110
            await asyncio.sleep(DRAIN_POLL_S)


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer
