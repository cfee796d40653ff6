"""A worker SIGKILLed under load loses no state and no alert: the same traffic, sent once to a worker
left alone and once to one killed twice mid-stream, ends in the same alerts and the same entity
states, with every input offset committed (``benchmarks/chaos.py`` runs the same comparison at scale)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

CHAOS = Path(__file__).resolve().parents[1] / "benchmarks" / "chaos.py"


def chaos_module():
    spec = importlib.util.spec_from_file_location("chaos", CHAOS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.broker
@pytest.mark.timeout(600)
def test_killed_worker_loses_no_state_and_no_alert(broker, tmp_path):
    chaos = chaos_module()
    records = chaos.traffic(8_000, 1.0, seed=3)
    clean_settings = chaos.run_settings(broker.bootstrap_servers, tmp_path, "clean", 3)
    clean = chaos.run(clean_settings, records, tmp_path / "clean", rate=None, settle_s=180)
    killed_settings = chaos.run_settings(broker.bootstrap_servers, tmp_path, "killed", 3)
    killed = chaos.run(killed_settings, records, tmp_path / "killed", rate=800, settle_s=180,
                       trouble=chaos.kills(2))
    report = chaos.compare(clean, killed)
    assert clean.events_unscored == 0 and report["alerts_clean"] > 0 and report["entities_clean"] > 0
    assert report["worker_restarts"] == 2, report
    losses = {name: report[name] for name in ("missing_alert_ids", "changed_alert_ids", "state_differences",
                                              "events_unscored", "stuck_partitions")}
    assert losses == dict.fromkeys(losses, 0), report
