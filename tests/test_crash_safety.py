"""A worker SIGKILLed under load loses no state and no alert: the same traffic, sent once to a worker
left alone and once to one killed twice mid-stream, ends in the same alerts and the same entity
states, with every input offset committed (``benchmarks/chaos.py`` runs the same comparison at scale). And
a worker restarted under traffic, again and again, gets every input offset committed each time."""

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


RESTARTS = 6
RESTART_EVENTS = 8_000  # sent at RATE from each restart on: the new worker starts under live traffic
RATE = 800.0
COMMIT_WITHIN_S = 90.0  # a restart, its recovery and the traffic take seconds; the crawl took tens of minutes


@pytest.mark.broker
@pytest.mark.timeout(900)
def test_a_worker_restarted_under_traffic_commits_every_offset(broker, tmp_path):
    """A worker SIGKILLed and restarted while events keep coming recovers its state from the changelog,
    then seeks its input partitions to their committed offsets while it already hands over the first
    fetch. After every restart its group's committed offsets must reach the end of what was sent: they
    used to advance by one offset per commit interval on the partitions that fetch covered."""
    chaos = chaos_module()
    settings = chaos.run_settings(broker.bootstrap_servers, tmp_path, "restarts", 3)
    records = chaos.traffic(settings, RESTART_EVENTS * (RESTARTS + 1), 1.0, seed=5)
    logs = tmp_path / "logs"
    logs.mkdir()
    workers = chaos.Workers(settings, logs)

    def kill_and_restart() -> None:
        workers.kill(workers.running[0])  # the next worker has a changelog to recover
        workers.start()

    ends: dict[tuple[str, int], int] = {}
    workers.start()
    try:
        for restart in range(RESTARTS + 1):
            chunk = records[restart * RESTART_EVENTS:(restart + 1) * RESTART_EVENTS if restart < RESTARTS else None]
            undelivered, sent = chaos.send(settings, chunk, RATE, {0.0: kill_and_restart} if restart else None)
            assert undelivered == 0
            ends.update(sent)  # each chunk holds later records, so its ends are the newest
            behind, stuck = chaos.settle(settings, workers, ends, COMMIT_WITHIN_S)
            assert (behind, stuck) == (0, 0), (
                f"after restart {restart}: {behind} events past the committed offsets of {stuck} partitions "
                f"{COMMIT_WITHIN_S:g} s after the traffic")
        assert workers.unexpected_deaths == 0
    finally:
        workers.stop_all()
