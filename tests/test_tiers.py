"""The two test tiers: which tests are the broker tier, and the guard that keeps stack
processes out of the fast tier."""

from __future__ import annotations

import sys

import pytest

from conftest import PROCESS_FIXTURES, product_process


@pytest.mark.parametrize(("argv", "started"), [
    ([sys.executable, "-m", "bankguard", "worker", "--loglevel", "info"], "bankguard worker"),
    ([sys.executable, "-m", "bankguard", "--version"], "bankguard"),
    ([sys.executable, "-m", "bankguard", "rules", "check", "x.yaml"], "bankguard rules"),
    ([sys.executable, "-m", "pytest", "-q"], None),
    (["bankguard", "up", "--rate", "300"], "bankguard up"),
    (["/root/.calfkit/bin/tansu-v0.6.0", "broker", "--listener-url", "tcp://127.0.0.1:1"], "tansu-v0.6.0"),
    (["/usr/bin/prometheus-alertmanager", "--config.file", "am.yml"], "prometheus-alertmanager"),
    (["/usr/bin/prometheus", "--config.file", "p.yml"], "prometheus"),
    (["promtool", "check", "rules", "r.yml"], None),
    ("git ls-files", None),
])
def test_product_processes_are_told_apart_from_other_children(argv, started):
    assert product_process(argv) == started


def test_process_starting_fixtures_put_their_tests_in_the_broker_tier(request):
    assert {"broker", "worker"} <= PROCESS_FIXTURES
    assert request.node.get_closest_marker("broker") is None  # this test needs none of them

