"""Faust's aiokafka transport with a configurable consumer fetch wait and a leaner fetch loop.

Faust 0.15 hard-codes ``fetch_max_wait_ms=1500`` for its worker consumer; the broker
may hold a fetch for most of that even when data is ready, which puts ~1 s of latency
on every event. This transport (URL scheme ``bankguard://``) applies the app's
``fetch_max_wait_ms`` instead, and hands each fetched message to the streams without
Faust's four tasks per message (see ``Consumer._drain_messages``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import aiokafka
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode import Service, ServiceT

DEFAULT_FETCH_MAX_WAIT_MS = 100


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka reads this attribute when it builds its fetcher at start().
        consumer._fetch_max_wait_ms = getattr(
            self.app, "fetch_max_wait_ms", DEFAULT_FETCH_MAX_WAIT_MS
        )
        return consumer


class Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _drain_messages(self, fetcher: ServiceT) -> None:  # pragma: no cover - the fetch loop
        """Faust's fetch loop, with one change: a message is handed to the streams as one task
        given one turn of the loop, and only when that does not finish it (a full stream buffer)
        does the loop wait on it alongside the flow-suspension event, as Faust always does.
        Faust's ``wait_first`` creates four tasks per message, which capped a worker at about
        5,000 events/s; the semantics under back-pressure and rebalancing are unchanged."""
        callback, getmany = self.callback, self.getmany
        consumer_should_stop = cast(Service, self)._stopped.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set
        get_read_offset, set_read_offset = self._read_offset.__getitem__, self._read_offset.__setitem__
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
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
                        delivered = asyncio.ensure_future(callback(message))
                        await asyncio.sleep(0)  # one turn: enough unless the stream buffer is full
                        if not delivered.done():
                            await self.wait_first(delivered, self.suspend_flow.wait())
                        elif delivered.exception() is not None:
                            delivered.result()
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


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer
