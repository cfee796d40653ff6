"""The two test tiers: which tests are the broker tier, and the guard that keeps every
child process out of the fast tier."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import PROCESS_FIXTURES, started_program


@pytest.mark.parametrize(("argv", "started"), [
    ([sys.executable, "-m", "bankguard", "worker", "--loglevel", "info"], "bankguard worker"),
    ([sys.executable, "-m", "bankguard", "--version"], "bankguard"),
    (["bankguard", "up", "--rate", "300"], "bankguard up"),
    (["/opt/calfkit/bin/tansu-v0.6.0", "broker", "--listener-url", "tcp://127.0.0.1:1"], "tansu-v0.6.0"),
    (["promtool", "check", "rules", "r.yml"], "promtool"),
    ("git ls-files", "git"),
])
def test_messages_name_the_program_a_test_started(argv, started):
    assert started_program(argv) == started


def test_a_fast_test_cannot_start_a_process():
    with pytest.raises(AssertionError, match="starts true outside the broker tier"):
        subprocess.run(["true"], check=False)


def test_process_starting_fixtures_put_their_tests_in_the_broker_tier(request):
    assert {"broker", "worker"} <= PROCESS_FIXTURES
    assert request.node.get_closest_marker("broker") is None  # this test needs none of them



@pytest.mark.parametrize("scenario", ["credit_card"])
def test_a_scenarios_tests_are_one_group_for_the_fast_tier(request, scenario):
    """The fast tier schedules by group (``--dist loadgroup``), so a scenario's traffic is made
    once; pytest-xdist marks the group in the node id, which some pytest releases ignore."""
    assert request.node.get_closest_marker("xdist_group").args == (scenario,)
    if request.config.getoption("loadgroup", False):  # a pytest-xdist worker under --dist loadgroup
        assert request.node.nodeid.endswith(f"@{scenario}"), "the groups do not reach the scheduler"
