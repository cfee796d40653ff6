"""The worker's incremental scoring and the batch scoring fire the same alerts.

Both run the same rule code; this holds their feature paths to the same decisions
on every scenario's generated traffic (pure logic: the broker path has its own tests).
"""

from __future__ import annotations

import orjson
import pandas as pd
import pytest

from bankguard.rules import evaluate_frame
from bankguard.rules.config import load_rules
from bankguard.producers.scenarios import generator_class
from bankguard.scenarios import SCENARIOS
from bankguard.stream_agents.scoring import Incoming, StreamScorer
from bankguard.stream_agents.state import StateStore

START_MS = 1_790_000_000_000
HOUR_MS = 3_600_000


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_stream_and_batch_fire_the_same_alerts(scenario):
    config = load_rules()
    generator = generator_class(scenario)(seed=17, n_entities=300)
    rows = []
    for hour in range(48):
        rows += generator.generate(START_MS + hour * HOUR_MS, START_MS + (hour + 1) * HOUR_MS, 400)

    frame = pd.DataFrame([row.event for row in rows])
    frame["t_ms"] = [row.timestamp_ms for row in rows]
    _, batch_hits = evaluate_frame(frame, scenario, config)
    expected = {(rows[h.row].event["event_id"], h.rule, h.severity) for h in batch_hits}

    scorer = StreamScorer(StateStore({}), lambda: config)
    stream = set()
    for start in range(0, len(rows), 250):  # batches, as take_events delivers them
        chunk = rows[start:start + 250]
        scored = scorer.score([Incoming(scenario, "t", 0, start + i, r.key.encode(), orjson.dumps(r.event),
                                        r.timestamp_ms) for i, r in enumerate(chunk)])
        assert not scored.dead_letters
        for _, value, _, rule, severity in scored.alerts:
            alert = orjson.loads(value)
            stream.add((alert["event_id"], rule, severity))
    assert stream == expected
    assert len(rows) > 10_000
