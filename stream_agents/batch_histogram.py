"""A Prometheus histogram observed a whole array at a time.

prometheus-client's ``Histogram.observe`` takes one value per call (a lock and a bucket
search each, ~2 µs); observing every scored event's latency and every model's score
that way cost more than the rules. Same exposition: ``_bucket``, ``_count``, ``_sum``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
from prometheus_client import CollectorRegistry
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString


class BatchHistogram(Collector):
    """Histogram series by label values; :meth:`observe` adds an array of observations."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], buckets: Sequence[float],
                 registry: CollectorRegistry) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = list(labelnames)
        bounds = [float(b) for b in buckets]
        if bounds[-1] != math.inf:
            bounds.append(math.inf)
        self.bounds = np.array(bounds)
        self._les = [floatToGoString(b) for b in bounds]
        self._series: dict[tuple[str, ...], tuple[np.ndarray, list[float]]] = {}  # counts per bucket, [sum]
        registry.register(self)

    def labels(self, *values: str) -> None:
        """Make the series exist (at 0) before its first observation."""
        self._get(values)

    def _get(self, values: tuple[str, ...]) -> tuple[np.ndarray, list[float]]:
        series = self._series.get(values)
        if series is None:
            series = self._series[values] = (np.zeros(len(self.bounds), dtype=np.int64), [0.0])
        return series

    def observe(self, values: np.ndarray, *labels: str) -> None:
        counts, total = self._get(labels)
        if len(values):
            counts += np.bincount(np.searchsorted(self.bounds, values, side="left"), minlength=len(self.bounds))
            total[0] += float(np.sum(values))

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, (counts, total) in self._series.items():
            cumulative = np.cumsum(counts).tolist()
            family.add_metric(list(labels), list(zip(self._les, cumulative, strict=True)), total[0])
        yield family

    def describe(self) -> Iterator[HistogramMetricFamily]:
        yield HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
