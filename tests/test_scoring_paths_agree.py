"""The worker's incremental scoring and the batch scoring fire the same alerts.

Both run the same rule code; this holds their feature paths to the same decisions
on every scenario's generated traffic (pure logic: the broker path has its own tests).
"""

from __future__ import annotations

import pytest

from bankguard.scenarios import SCENARIOS
from scenario_traffic import batch_scored, stream_scored


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_stream_and_batch_fire_the_same_alerts(scenario):
    batch, stream = batch_scored(scenario), stream_scored(scenario)
    assert stream.dead_letters == 0
    assert batch.keys, f"{scenario}: no rule fired on its generated traffic, nothing compared"
    assert stream.keys == batch.keys
    assert len(batch.rows) > 10_000
