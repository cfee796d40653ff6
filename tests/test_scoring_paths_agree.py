"""The worker's incremental scoring and the batch scoring fire the same alerts.

Both run the same rule code; this holds their feature paths to the same decisions
on every scenario's generated traffic (pure logic: the broker path has its own tests).
"""

from __future__ import annotations

import pytest

from bankguard.scenarios import SCENARIOS
from generated import traffic
from scoring_helpers import Alerts, batch_alerts, stream_alerts


def fired(alerts: Alerts) -> set[tuple[str, str, str]]:
    return {(a["event_id"], a["detector"]["id"], a["severity"]) for a in alerts}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_stream_and_batch_fire_the_same_alerts(scenario):
    events = [row.event for row in traffic(scenario)]
    expected = fired(batch_alerts(events))
    assert len(events) > 10_000
    assert expected, "the traffic raised no alert: the paths agree on nothing"
    assert fired(stream_alerts(events, batch_size=250)) == expected  # batches, as take_events delivers them
