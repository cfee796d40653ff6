"""cyber_security generator: each pattern's contextual signature, detector mix, rates."""

from __future__ import annotations

from collections import Counter, defaultdict
from itertools import pairwise

import numpy as np

from bankguard.producers.scenarios.base import Emitted
from bankguard.producers.scenarios.cyber_security import CyberSecurityGenerator
from scenario_traffic import START_MS, MINUTE, HOUR, period_fixtures, assert_events_valid, grouped

HOURS = 12


pools, rows = period_fixtures(CyberSecurityGenerator, seed=5, entities=800, pool_size=400,
                              period_ms=HOUR, periods=HOURS, per_period=3_000)


def test_kill_chain_runs_phishing_then_malware_then_exfiltration_within_an_hour(rows):
    uploads = defaultdict(list)
    for row in rows:
        if row.pattern is None and row.event["threat_type"] == "insider":
            uploads[row.key].append(row.event["bytes_out"])
    ratios = []
    for key, chain in grouped(rows, "kill_chain").items():
        kinds = [r.event["threat_type"] for r in chain]
        if kinds.count("phishing") != 1 or chain[0].timestamp_ms > START_MS + (HOURS - 1) * HOUR:
            continue  # two chains on one host, or cut off by the end of the run
        assert kinds[0] == "phishing" and kinds[-1] == "insider" and set(kinds[1:-1]) == {"malware"}
        assert chain[0].event["detector"] == "email_gateway"
        assert chain[-1].event["detector"] == "dlp"
        assert chain[-1].timestamp_ms - chain[0].timestamp_ms < HOUR
        assert chain[-1].event["counterparty"] == chain[1].event["counterparty"]  # back to the C2
        if uploads[key]:  # far above what this host usually sends
            ratios.append(chain[-1].event["bytes_out"] / np.median(uploads[key]))
    # Hosts that upload a lot anyway hide it better: most, not all, stand out tenfold.
    assert len(ratios) >= 15 and np.median(ratios) > 10 and np.mean(np.array(ratios) > 5) > 0.8


def episodes(group: list[Emitted], gap_ms: int) -> list[list[Emitted]]:
    """Split one host's pattern events where they pause for longer than ``gap_ms``."""
    out = [[group[0]]]
    for before, row in pairwise(group):
        if row.timestamp_ms - before.timestamp_ms > gap_ms:
            out.append([])
        out[-1].append(row)
    return out


def test_ddos_burst_floods_one_host_within_minutes_with_rising_reach(rows):
    background = grouped([r for r in rows if r.event["threat_type"] == "ddos"], None)
    checked = 0
    for key, group in grouped(rows, "ddos_burst").items():
        times = [r.timestamp_ms for r in background.get(key, [])]
        for burst in episodes(group, 10 * MINUTE):
            if burst[0].timestamp_ms > START_MS + HOURS * HOUR - 10 * MINUTE:
                continue  # cut off by the end of the run
            assert len(burst) >= 12 and {r.event["threat_type"] for r in burst} == {"ddos"}
            assert {r.event["detector"] for r in burst} <= {"waf", "ids"}
            assert burst[-1].timestamp_ms - burst[0].timestamp_ms <= 8 * MINUTE
            systems = [r.event["systems_affected"] for r in burst]
            assert systems == sorted(systems) and systems[-1] > systems[0]
            assert len({r.event["counterparty"] for r in burst}) > 0.8 * len(burst)
            # The host sees DDoS alerts otherwise, but never as many within minutes.
            assert all(sum(t <= u < t + 8 * MINUTE for u in times) < len(burst) / 2 for t in times)
            checked += 1
    assert checked >= 5


def test_pattern_events_look_routine_one_by_one(rows):
    background = [r.event for r in rows if r.pattern is None]
    top_severity = np.percentile([e["severity_score"] for e in background], 99.9)
    assert all(r.event["severity_score"] <= top_severity for r in rows if r.pattern)
    uploads = [e["bytes_out"] for e in background if e["threat_type"] == "insider"]
    exfil = [r.event["bytes_out"] for r in rows if r.pattern == "kill_chain"]
    assert max(exfil) < max(uploads)  # the estate's own backups are bigger


def test_background_threat_and_detector_mix(rows):
    background = [r.event for r in rows if r.pattern is None]
    pairs = Counter((e["threat_type"], e["detector"]) for e in background)
    threats = Counter(e["threat_type"] for e in background)

    def share(threat: str, detectors: set[str]) -> float:
        return sum(pairs[threat, d] for d in detectors) / threats[threat]

    assert share("phishing", {"email_gateway"}) > 0.8 and share("malware", {"edr"}) > 0.7
    assert share("ddos", {"waf", "ids"}) == 1.0 and share("insider", {"dlp"}) > 0.75
    assert threats.most_common(1)[0][0] == "phishing"
    assert np.median([e["severity_score"] for e in background]) < 4.0
    assert all("amount" not in e and "currency" not in e for e in background)


def test_every_event_validates_and_patterns_carry_the_same_fields(rows):
    assert_events_valid("cyber_security", rows)
    assert len({frozenset(row.event) for row in rows}) == 1


def test_incident_response_is_the_kill_chain_in_another_order_and_unlabelled(pools, rows):
    gen = CyberSecurityGenerator(seed=3, n_entities=200, pools=pools)
    plans = {pattern.name: pattern for pattern in gen.patterns()}
    assert plans["incident_response"].benign and gen.order_only
    assert "incident_response" not in gen.pattern_names

    def steps(name: str, entity: int) -> list[tuple[str, str]]:
        planned = sorted(plans[name].plan(entity, START_MS), key=lambda step: step[0])
        return [(fields["threat_type"], fields["detector"]) for _, fields in planned]

    for entity in range(100):
        attack, response = steps("kill_chain", entity), steps("incident_response", entity)
        for chain in (attack, response):  # counted over any window, the same detections
            assert chain.count(("phishing", "email_gateway")) == 1 and chain[-1] == ("insider", "dlp")
            assert {kind for kind in chain[:-1] if kind[0] != "phishing"} <= {("malware", "edr"), ("malware", "ids")}
        assert attack[0][0] == "phishing" and response[0] == ("malware", "edr")  # the order is the difference
    # A look-alike is legitimate traffic: the truth never names it.
    assert not any(r.pattern == "incident_response" for r in rows)
