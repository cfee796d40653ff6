"""The worker's incremental scoring and the batch scoring fire the same alerts.

Both run the same rule code; this holds their feature paths to the same decisions
on every scenario's generated traffic (pure logic: the broker path has its own tests).
"""

from __future__ import annotations

import pytest

from bankguard.scenarios import SCENARIOS
from scenario_traffic import scored_traffic


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_stream_and_batch_fire_the_same_alerts(scenario):
    traffic = scored_traffic(scenario)
    assert traffic.dead_letters == 0
    assert traffic.batch, f"{scenario}: no rule fired on two days of traffic, nothing compared"
    assert traffic.stream == traffic.batch
    assert len(traffic.rows) > 10_000
