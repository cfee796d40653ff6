"""The stream's incremental state and the batch computation give the same features."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bankguard.features.incremental import EntityState
from bankguard.features.spec import DAY_MS, HOUR_MS, MINUTE_MS, SinceLast, Tenure, WindowFeature, Where
from bankguard.features.vectorized import compute_features

FEATURES = (
    WindowFeature("n_1h", "count", 5 * MINUTE_MS, 12),
    WindowFeature("sum_24h", "sum", HOUR_MS, 24, value="abs_amount"),
    WindowFeature("max_24h", "max", HOUR_MS, 24, value="abs_amount"),
    WindowFeature("n_90d", "count", DAY_MS, 91),
    WindowFeature("sum_90d", "sum", DAY_MS, 91, value="abs_amount"),
    WindowFeature("sum_7d", "sum", DAY_MS, 7, value="abs_amount"),  # shares sum_90d's buckets
    WindowFeature("sumsq_90d", "sumsq", DAY_MS, 91, value="abs_amount"),
    WindowFeature("failed_30m", "count", 5 * MINUTE_MS, 6,
                  where=(Where("kind", "==", "login"), Where("ok", "==", False))),
    WindowFeature("near_50k_24h", "count", HOUR_MS, 24,
                  where=(Where("amount", ">=", 45_000), Where("amount", "<", 50_000))),
    SinceLast("device_seen", "device", horizon_ms=30 * DAY_MS),
    Tenure(),
)


def random_events(seed: int, n: int = 3_000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t0 = 1_790_000_000_000
    # Coarse times (whole minutes) so that ties happen often.
    times = t0 + rng.integers(0, 200 * 24 * 60, n) * MINUTE_MS
    amounts = np.round(rng.lognormal(8, 1.5, n), 2)
    amounts[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame({
        "entity_id": rng.choice([f"A{i}" for i in range(12)], n),
        "t_ms": times,
        "amount": np.where(rng.random(n) < 0.5, amounts, -amounts),
        "kind": rng.choice(["login", "transfer"], n),
        "ok": rng.random(n) < 0.7,
        "device": rng.choice(["d1", "d2", "d3", None], n),
    })


def stream_features(events: pd.DataFrame) -> dict[str, np.ndarray]:
    order = np.lexsort((np.arange(len(events)), events["t_ms"].to_numpy()))
    states: dict[str, EntityState] = {}
    out = {f.name: np.empty(len(events)) for f in FEATURES}
    records = events.to_dict("records")
    for row in order:
        event = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in records[row].items()}
        state = states.setdefault(event["entity_id"], EntityState())
        # Round-trip through JSON as the changelog would, every few events.
        if row % 7 == 0:
            state = states[event["entity_id"]] = EntityState.decode(state.encode())
        for name, value in state.observe(FEATURES, event, int(event["t_ms"])).items():
            out[name][row] = value
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_stream_and_batch_features_are_equal(seed):
    events = random_events(seed)
    batch = compute_features(events, FEATURES)
    stream = stream_features(events)
    for feature in FEATURES:
        np.testing.assert_allclose(stream[feature.name], batch[feature.name], rtol=1e-9,
                                   err_msg=feature.name)
    assert batch["failed_30m"].max() > 0 and np.isfinite(batch["device_seen"]).any()


def test_windows_end_strictly_before_the_event_time():
    events = pd.DataFrame({
        "entity_id": ["A", "A", "A", "B"],
        "t_ms": [1_000 * DAY_MS, 1_000 * DAY_MS, 1_000 * DAY_MS + 1, 1_000 * DAY_MS + 1],
        "amount": [10.0, 20.0, 40.0, 99.0],
    })
    spec = (WindowFeature("n", "count", DAY_MS, 91), WindowFeature("s", "sum", DAY_MS, 91, value="amount"))
    batch = compute_features(events, spec)
    assert batch["n"].tolist() == [0, 0, 2, 0]  # the tie at the same ms is not history
    assert batch["s"].tolist() == [0, 0, 30.0, 0]


def test_history_drops_out_after_its_window():
    day = 1_000 * DAY_MS
    events = pd.DataFrame({"entity_id": ["A"] * 3, "t_ms": [day, day + 90 * DAY_MS, day + 91 * DAY_MS],
                           "amount": [5.0, 6.0, 7.0]})
    spec = (WindowFeature("n", "count", DAY_MS, 91),)
    assert compute_features(events, spec)["n"].tolist() == [0, 1, 1]


def test_many_distinct_values_are_remembered_alike():
    """A host talking to hundreds of addresses: the stream keeps every value within the
    horizon, as the batch engine does, and forgets the ones that left it."""
    rng = np.random.default_rng(4)
    n = 2_000
    events = pd.DataFrame({
        "entity_id": "HOST-1",
        "t_ms": 1_790_000_000_000 + np.sort(rng.integers(0, 120 * DAY_MS, n)),
        "remote": rng.choice([f"10.0.{i // 256}.{i % 256}" for i in range(500)], n),
    })
    spec = (SinceLast("remote_seen", "remote", horizon_ms=30 * DAY_MS),)
    batch = compute_features(events, spec)["remote_seen"]
    state, stream = EntityState(), []
    for event in events.to_dict("records"):
        stream.append(state.observe(spec, event, int(event["t_ms"]))["remote_seen"])
    np.testing.assert_array_equal(np.array(stream), batch)
    assert np.isfinite(batch).sum() > 1_000 and len(state.seen["remote_seen"]) < 500


def test_windows_that_count_the_same_thing_share_their_buckets():
    """A 7-, 30- and 90-day daily sum of the same value are one series in the state, kept
    for the longest window; a count at another bucket size is its own."""
    spec = tuple(WindowFeature(f"sum_{days}d", "sum", DAY_MS, days, value="amount") for days in (7, 30, 91)) + (
        WindowFeature("n_1h", "count", 5 * MINUTE_MS, 12),)
    state = EntityState()
    for day in range(100):
        state.observe(spec, {"amount": 1.0}, (1_000 + day) * DAY_MS)
    values = state.observe(spec, {"amount": 1.0}, 1_100 * DAY_MS)
    assert values == {"sum_7d": 6.0, "sum_30d": 29.0, "sum_91d": 90.0, "n_1h": 0.0}  # today's bucket is empty
    assert sorted(len(buckets) for buckets in state.buckets.values()) == [1, 91]


def test_a_state_of_the_first_json_layout_keeps_its_replay_guard():
    legacy = b'{"b": {"n_90d": [[20000, 3.0]]}, "s": {}, "t": 1, "p": [], "o": 41, "f": 7, "x": {}}'
    state = EntityState.decode(legacy)
    assert (state.offset, state.first_t, state.buckets) == (41, 7, {})
