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


def losses_against_clean_run(broker, tmp_path: Path, trouble) -> dict:
    """The same traffic to a worker left alone and to workers under ``trouble``: the comparison."""
    chaos = chaos_module()
    clean_settings = chaos.run_settings(broker.bootstrap_servers, tmp_path, "clean", 3)
    records = chaos.traffic(clean_settings, 8_000, 1.0, seed=3)
    clean = chaos.run(clean_settings, records, tmp_path / "clean", rate=None, settle_s=180)
    troubled_settings = chaos.run_settings(broker.bootstrap_servers, tmp_path, "troubled", 3)
    troubled = chaos.run(troubled_settings, records, tmp_path / "troubled", rate=800, settle_s=180,
                         trouble=trouble(chaos))
    report = chaos.compare(clean, troubled)
    assert clean.events_unscored == 0 and report["alerts_clean"] > 0 and report["entities_clean"] > 0
    return report


LOSSES = ("missing_alert_ids", "changed_alert_ids", "state_differences", "events_unscored", "stuck_partitions")


@pytest.mark.broker
@pytest.mark.timeout(600)
def test_killed_worker_loses_no_state_and_no_alert(broker, tmp_path):
    report = losses_against_clean_run(broker, tmp_path, lambda chaos: chaos.kills(2))
    assert report["worker_restarts"] == 2, report
    assert {name: report[name] for name in LOSSES} == dict.fromkeys(LOSSES, 0), report
