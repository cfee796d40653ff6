"""The array histogram exposes exactly what prometheus-client's own histogram would."""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from bankguard.stream_agents.batch_histogram import BatchHistogram

BUCKETS = (0.01, 0.1, 0.5, 1.0)


def samples(registry: CollectorRegistry) -> set[str]:
    return {line for line in generate_latest(registry).decode().splitlines()
            if line and not line.startswith("#") and "_created" not in line}


def test_same_exposition_as_prometheus_client():
    values = np.array([0.0, 0.01, 0.0100001, 0.1, 0.3, 0.5, 0.99, 1.0, 2.0, 7.5])
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    batch = BatchHistogram("bg_test_seconds", "Test.", ["scenario"], BUCKETS, ours)
    single = Histogram("bg_test_seconds", "Test.", ["scenario"], buckets=BUCKETS, registry=theirs)
    batch.labels("quiet")
    single.labels("quiet")
    batch.observe(values[:4], "busy")
    batch.observe(values[4:], "busy")
    for value in values:
        single.labels("busy").observe(value)
    assert samples(ours) == samples(theirs)
    assert 'bg_test_seconds_bucket{le="0.01",scenario="busy"} 2.0' in samples(ours)  # le is inclusive
    assert 'bg_test_seconds_count{scenario="quiet"} 0.0' in samples(ours)
