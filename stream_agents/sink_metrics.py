"""Watching the worker's sink through a broker outage: one log line when delivery stalls, one
when it resumes, and the backlog and stall length as Prometheus gauges (BankGuardSinkStalled).

The sink waits out an outage instead of failing, so without this watch a stalled broker would
look like a quiet worker: the gauges say how many records (alerts, dead letters, state) wait
and for how long the broker has acknowledged none of them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from bankguard.stream_agents.sink import BatchSink

log = logging.getLogger(__name__)

STALL_LOG_AFTER_S = 5.0  # a stall this long is logged: longer than any healthy acknowledgement
CHECK_INTERVAL_S = 1.0  # how often the worker runs :meth:`SinkWatch.check`


class SinkWatch(Collector):
    """Tracks since when records have waited with no acknowledgement at all.

    ``check`` runs on a timer: it serves delivery reports (so an idle worker's backlog still
    drains), and logs a stall once when it passes ``log_after_s`` and once when it ends.
    """

    def __init__(self, sink: BatchSink, *, log_after_s: float = STALL_LOG_AFTER_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.sink = sink
        self.log_after_s = log_after_s
        self.clock = clock
        self._progress_at = clock()  # the last time nothing waited or an acknowledgement came
        self._acknowledged = sink.acknowledged
        self._logged = False

    def stalled_s(self) -> float:
        """Seconds the broker has acknowledged nothing while records wait (0 when none wait)."""
        return self.clock() - self._progress_at if self.sink.pending else 0.0

    def check(self) -> None:
        self.sink.poll()
        now, acknowledged = self.clock(), self.sink.acknowledged
        if self.sink.pending == 0 or acknowledged != self._acknowledged:
            if self._logged:
                log.warning("sink recovered: the broker acknowledges records again after %.0f s; "
                            "%d record(s) still waiting", now - self._progress_at, self.sink.pending)
            self._progress_at, self._acknowledged, self._logged = now, acknowledged, False
        elif not self._logged and now - self._progress_at >= self.log_after_s:
            log.warning("sink stalled: %d record(s) unacknowledged for %.0f s; waiting for the broker "
                        "(offsets are not committed until it answers; batches pause once the sink is full)",
                        self.sink.pending, now - self._progress_at)
            self._logged = True

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("bankguard_sink_unacknowledged_records",
                                "Records (alerts, dead letters, state) sent and not yet acknowledged by the broker.",
                                value=self.sink.pending)
        yield GaugeMetricFamily("bankguard_sink_stalled_seconds",
                                "Seconds the broker has acknowledged none of the waiting records (0 when none wait).",
                                value=self.stalled_s())
