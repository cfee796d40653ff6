"""Model features are point in time, and the stream can rebuild them exactly.

- an event's features never change when later events are appended (no future leaks);
- a counterparty's fraud rate ignores labels not yet known (planted future label);
- the stream path (EntityState + SequenceBuffer + CounterpartyRiskTracker + the
  scorer's matrix) gives the same model input as the batch path used for training.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from bankguard.features.incremental import EntityState
from bankguard.features.spec import DAY_MS
from bankguard.models.counterparty import (
    CounterpartyRiskConfig,
    CounterpartyRiskTracker,
    counterparty_fraud_rate,
)
from bankguard.models.dataset import QUICK, features_of, frame_of, generate_records
from bankguard.models.features import (
    SPECS,
    event_columns,
    feature_signature,
    model_matrix,
    scenario_features,
    window_features,
    window_matrix,
)
from bankguard.models.sequences import SEQ_LEN, SequenceBuffer, build_sequences, vector_width
from bankguard.scenarios import SCENARIOS

# With an outcomes feed, so the counterparty rate's definition is exercised end to end.
SMALL = replace(QUICK, days=9, events_per_day=350, n_entities=80, warmup_days=1, val_days=2,
                gap_days=1, test_days=2, counterparty_outcomes=True)


@pytest.fixture(scope="module", params=list(SCENARIOS))
def traffic(request):
    records, patterns = generate_records(request.param, SMALL)
    return request.param, records, patterns


def test_every_scenario_declares_features_with_unique_prefixed_names():
    assert set(SPECS) == set(SCENARIOS)
    for scenario, spec in SPECS.items():
        names = [f.name for f in spec.windows]
        assert len(names) == len(set(names)) and all(name.startswith("m_") for name in names), scenario
        assert len(spec.columns) == len(set(spec.columns)), scenario
        json.dumps(feature_signature(scenario))  # storable in a manifest


def test_features_of_an_event_do_not_change_when_later_events_arrive(traffic):
    scenario, records, patterns = traffic
    spec = scenario_features(scenario)
    full = frame_of(records, patterns)
    cut = int(full["t_ms"].quantile(0.6))
    early = full["t_ms"] < cut
    prefix_records = [r for r, keep in zip(records, early, strict=True) if keep]
    prefix = frame_of(prefix_records, [p for p, keep in zip(patterns, early, strict=True) if keep])
    X_full, _ = features_of(spec, full, SMALL, records)
    X_prefix, _ = features_of(spec, prefix, SMALL, prefix_records)
    np.testing.assert_array_equal(X_full[early.to_numpy()], X_prefix)
    np.testing.assert_array_equal(build_sequences(full)[early.to_numpy()],
                                  build_sequences(prefix))


def test_a_planted_future_label_is_ignored():
    config = CounterpartyRiskConfig(delay_days=7, window_days=30)
    day = np.array([0, 1, 2, 10, 14, 16, 17, 18])
    cp = np.array(["M1"] * len(day), dtype=object)
    labels = np.zeros(len(day))
    base = counterparty_fraud_rate(cp, day * DAY_MS + 3_600_000, labels, config)
    planted = labels.copy()
    planted[3] = 1  # a fraud on day 10: known from day 18 on (10 + 7 full days later)
    rates = counterparty_fraud_rate(cp, day * DAY_MS + 3_600_000, planted, config)
    known = day >= 18
    np.testing.assert_array_equal(rates[~known], base[~known])
    # on day 18 the known days are [-19, 11): events of days 0, 1, 2, 10 -> 1 fraud / (4 + 1)
    assert rates[known].tolist() == [pytest.approx(1 / 5)]
    # an event's own label never counts, however long the delay
    own = counterparty_fraud_rate(np.array(["M1", "M2"], dtype=object), np.array([0, 0]), np.array([1, 1]), config)
    assert own.tolist() == [0.0, 0.0]


def test_counterparty_tracker_matches_the_batch_rate():
    rng = np.random.default_rng(5)
    n = 3_000
    t_ms = np.sort(rng.integers(0, 80 * DAY_MS, n))
    cp = rng.choice(["A", "B", "C", None], n).astype(object)
    labels = (rng.random(n) < 0.1).astype(int)
    config = CounterpartyRiskConfig(delay_days=5, window_days=20)
    batch = counterparty_fraud_rate(cp, t_ms, labels, config)
    tracker = CounterpartyRiskTracker(config)
    stream = []
    for c, t, label in zip(cp.tolist(), t_ms.tolist(), labels.tolist(), strict=True):
        stream.append(tracker.rate(c, t))
        tracker.observe(c, t)
        tracker.confirm(c, t, bool(label))  # confirmed at once: still unused until known
    np.testing.assert_allclose(stream, batch, rtol=1e-12)
    assert batch.max() > 0


def test_stream_path_rebuilds_the_training_matrix_and_sequences(traffic):
    scenario, records, patterns = traffic
    spec = scenario_features(scenario)
    frame = frame_of(records, patterns)
    X_batch, rates_batch = features_of(spec, frame, SMALL, records)
    seq_batch = build_sequences(frame)

    states: dict[str, EntityState] = {}
    buffers: dict[str, SequenceBuffer] = {}
    tracker = CounterpartyRiskTracker(SMALL.counterparty)
    rows, seqs, rates = [], [], []
    order = np.lexsort((np.arange(len(records)), frame["t_ms"].to_numpy()))
    events = []
    for i in order.tolist():
        event = json.loads(json.dumps(records[i]))  # as the worker gets it off the topic
        entity = event["entity_id"]
        if i % 5 == 0 and entity in states:  # changelog round trips
            states[entity] = EntityState.decode(states[entity].encode())
            buffers[entity] = SequenceBuffer.from_json(json.loads(json.dumps(buffers[entity].to_json())))
        rows.append(states.setdefault(entity, EntityState()).observe(window_features(scenario), event, event["t_ms"]))
        seqs.append(buffers.setdefault(entity, SequenceBuffer()).push(event))
        cp = event.get(spec.counterparty) if spec.counterparty else None
        rates.append(tracker.rate(cp, event["t_ms"]))
        tracker.observe(cp, event["t_ms"])
        tracker.confirm(cp, event["t_ms"], patterns[i] is not None)
        events.append(event)
    X_stream = model_matrix(spec, event_columns(spec, events), window_matrix(spec, rows), np.array(rates))
    np.testing.assert_allclose(X_stream, X_batch[order], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.stack(seqs), seq_batch[order])
    assert np.stack(seqs).shape[1:] == (SEQ_LEN, vector_width(scenario))
    if spec.counterparty:
        np.testing.assert_allclose(rates, rates_batch[order], rtol=1e-12)


def test_matrix_handles_missing_fields_and_unknown_categories():
    spec = scenario_features("credit_card")
    event = {"scenario": "credit_card", "entity_id": "CARD-1", "t_ms": 1_790_000_000_000, "amount": 10.0,
             "transaction_type": "purchase", "device_type": "mobile", "merchant_category": "0000",
             "country": "ZZ"}
    rows = [{f.name: 0.0 for f in spec.windows} | {"m_since_prev": float("inf")}]
    X = model_matrix(spec, event_columns(spec, [event]), window_matrix(spec, rows))
    assert X.shape == (1, len(spec.columns)) and np.isfinite(X).all()
    assert X[0, spec.columns.index("merchant_category=<other>")] == 1.0
    assert X[0, spec.columns.index("country=<other>")] == 1.0
    frame = pd.DataFrame([event])
    assert frame.shape[0] == 1


def test_policy_age_and_claim_rate_read_the_policy_start_in_days():
    spec = scenario_features("insurance_claims")
    start_ms = int(np.datetime64("2026-01-01", "ms").astype(np.int64))
    events = [{"scenario": "insurance_claims", "entity_id": "POL-1", "t_ms": start_ms + days * DAY_MS,
               "amount": 5_000.0, "claim_type": "auto", "policy_start": start, "prior_claims": 2}
              for days, start in ((10, "2026-01-01"), (730, "2026-01-01"), (10, None), (10, "not a date"))]
    rows = [{f.name: 0.0 for f in spec.windows} | {"m_since_prev": float("inf")}] * len(events)
    X = model_matrix(spec, event_columns(spec, events), window_matrix(spec, rows))
    age = X[:, spec.columns.index("log_policy_age_days")]
    rate = X[:, spec.columns.index("claims_per_year")]
    np.testing.assert_allclose(age[:2], np.log1p([10.0, 730.0]), rtol=1e-6)
    np.testing.assert_allclose(rate[:2], [2 / 0.25, 2 / 2.0], rtol=1e-6)  # a young policy: the quarter-year floor
    np.testing.assert_allclose(age[2:], np.log1p(3650.0), rtol=1e-6)  # unknown start: a ten-year-old policy
