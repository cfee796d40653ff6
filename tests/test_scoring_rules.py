"""Crafted sequences, exactly the expected alerts: in process on the stream scorer and on the
backtest's batch engine (the fast tier), and once end to end through the broker and a real worker."""

from __future__ import annotations

import json
from datetime import timedelta

import jsonschema_rs
import orjson
import pytest

from bankguard.alerts import alert_headers
from bankguard.schema_files import ALERT_SCHEMA_PATH
from bankguard.topics import Topics
from kafka_helpers import read_to_end, read_topic
from scoring_helpers import (IN_PROCESS, Alerts, event, expected_cases, send, stream_alerts, summary, worker_alerts,
                             worker_cases)

DAY, HOUR, MINUTE = timedelta(days=1), timedelta(hours=1), timedelta(minutes=1)


def large_amount_cases() -> list[dict]:
    e = lambda entity, at, amount, memo=None, direction="out": event(  # noqa: E731
        "aml_kyc", entity, at, amount=amount, memo=memo, direction=direction)
    return [
        # background, not an outlier: fine
        e("acc-a", 0 * DAY, 30_000, "工资", "in"), e("acc-a", 1 * DAY, 30_000, "工资", "in"),
        e("acc-a", 10 * DAY, 60_000, "购房款"),
        # background but an outlier, no high-risk word: medium
        e("acc-b", 0 * DAY, 10_000, "工资", "in"), e("acc-b", 1 * DAY, 10_000, "工资", "in"),
        e("acc-b", 10 * DAY, 60_000, "年终奖"),
        # background, outlier and a high-risk word: high (and the crypto keyword list fires)
        e("acc-c", 0 * DAY, 10_000, "工资", "in"), e("acc-c", 1 * DAY, 10_000, "工资", "in"),
        e("acc-c", 10 * DAY, 60_000, "理财 虚拟货币"),
        # no background: high even though it is not an outlier
        e("acc-d", 0 * DAY, 30_000, "工资", "in"), e("acc-d", 1 * DAY, 30_000, "工资", "in"),
        e("acc-d", 10 * DAY, 60_000, "转账"),
        # no history at all, no memo: high
        e("acc-e", 10 * DAY, 70_000),
        # above the 200,000 tier: critical
        e("acc-f", 10 * DAY, 250_000, "转账"),
        # an event at the very same time is not history: mean stays 25,000, so not an outlier
        e("acc-g", 0 * DAY, 25_000, "工资", "in"),
        e("acc-g", 10 * DAY, 1_000, "报销", "in"), e("acc-g", 10 * DAY, 60_000, "年终奖"),
        # history older than the 90-day window is gone: no history, background, fine
        e("acc-h", 0 * DAY, 10_000, "工资", "in"), e("acc-h", 92 * DAY, 60_000, "年终奖"),
        # just under the threshold
        e("acc-i", 10 * DAY, 49_999.99),
        # keywords: English whole words, Chinese substrings
        e("acc-k", 10 * DAY, 500, "casino night"), e("acc-l", 10 * DAY, 500, "casinos review"),
        e("acc-m", 10 * DAY, 500, "去赌博了"),
    ]


def assert_large_amount_alerts(alerts: Alerts) -> None:
    assert summary(alerts) == {
        ("acc-b", "large_amount", "medium"),
        ("acc-c", "large_amount", "high"), ("acc-c", "keywords", "medium"),
        ("acc-d", "large_amount", "high"),
        ("acc-e", "large_amount", "high"),
        ("acc-f", "large_amount", "critical"),
        ("acc-k", "keywords", "high"), ("acc-m", "keywords", "high"),
    }
    assert len(alerts) == 8
    by = {(a["entity_id"], a["detector"]["id"]): a for a in alerts}
    b = by["acc-b", "large_amount"]
    assert b["evidence"]["history_count"] == 2 and b["evidence"]["history_mean"] == 10_000
    assert b["evidence"]["ratio_to_mean"] == 6.0 and b["evidence"]["background_keywords"] == ["年终奖"]
    assert any("6.0x the 90-day mean 10,000.00" in r for r in b["reasons"])
    c = by["acc-c", "large_amount"]
    assert c["evidence"]["high_risk_keywords"] == ["虚拟货币"]
    assert "high-risk keywords: 虚拟货币" in c["reasons"]
    assert "no reasonable background in memo or counterparty" in by["acc-d", "large_amount"]["reasons"]
    assert "no history in the previous 90 days" in by["acc-e", "large_amount"]["reasons"]
    assert by["acc-f", "large_amount"]["evidence"]["tier"] == 200_000
    for alert in alerts:
        assert alert["rules_config_version"] == "2026-11-21.1"
        assert "memo" not in alert["evidence"] and "counterparty" not in alert["evidence"]


def assert_alert_contract(alerts: Alerts) -> None:
    """Every alert validates against the committed schema."""
    assert alerts
    schema = json.loads(ALERT_SCHEMA_PATH.read_text())
    for alert in alerts:
        jsonschema_rs.validate(schema, alert, validate_formats=True)


@pytest.mark.parametrize("path", IN_PROCESS)
def test_large_amount_and_keyword_rules(path):
    assert_large_amount_alerts(IN_PROCESS[path](large_amount_cases()))


def context_cases() -> tuple[list[dict], set[tuple[str, str, str]]]:
    ev = event
    cases = [
        # enterprise loans: a company known for 60 days with one application, then a third
        # application within 72 h, total above half the revenue
        ev("enterprise_loan", "CO-1", -60 * DAY, amount=1_000_000.0, branch_id="BR-01"),
        ev("enterprise_loan", "CO-1", 0 * HOUR, amount=3_000_000.0, branch_id="BR-01"),
        ev("enterprise_loan", "CO-1", 20 * HOUR, amount=4_000_000.0, branch_id="BR-02"),
        ev("enterprise_loan", "CO-1", 40 * HOUR, amount=5_000_000.0, branch_id="BR-03"),
        ev("enterprise_loan", "CO-2", 0 * HOUR, amount=3_000_000.0),  # a single one: fine
        # cards: two tiny probes then a purchase far above the card's habit
        ev("credit_card", "CARD-1", 0 * DAY, amount=200.0), ev("credit_card", "CARD-1", 1 * DAY, amount=220.0),
        ev("credit_card", "CARD-1", 2 * DAY, amount=5.0), ev("credit_card", "CARD-1", 2 * DAY + MINUTE, amount=7.0),
        ev("credit_card", "CARD-1", 2 * DAY + 5 * MINUTE, amount=6_000.0, merchant_category="5732"),
        # FX: a ticket twelve times the trader's mean
        *[ev("forex_trading", "TRD-1", i * HOUR, amount=1_000_000.0) for i in range(5)],
        ev("forex_trading", "TRD-1", 6 * HOUR, amount=12_000_000.0),
        # wealth: three sales over two months, then four within a week (churning on the fourth)
        *[ev("wealth_product", "WC-2", d * DAY) for d in (-60, -40, -20, 0, 1, 2, 3)],
        # wealth: crypto to an 80-year-old conservative investor
        ev("wealth_product", "WC-1", 0 * DAY, product_type="crypto", product_risk_level=5, investor_age=80,
           risk_tolerance="conservative"),
        # ... but the same sale placed online is execution-only: no suitability alert
        ev("wealth_product", "WC-3", 0 * DAY, product_type="crypto", product_risk_level=5, investor_age=80,
           risk_tolerance="conservative", channel="online"),
        # online banking: three failed logins, a success, a transfer to a new payee
        *[ev("atm_netbank", "ACC-1", i * MINUTE, success=False, login_attempts=i + 1, device_id="X-9")
          for i in range(3)],
        ev("atm_netbank", "ACC-1", 4 * MINUTE, login_attempts=4, device_id="X-9"),
        ev("atm_netbank", "ACC-1", 6 * MINUTE, action="transfer", amount=20_000.0, counterparty="ACC-777"),
        # interbank: four large deals with one bank within 6 h
        *[ev("interbank_derivatives", "BNK-1", -DAY * (i + 1), amount=10_000_000.0) for i in range(5)],
        *[ev("interbank_derivatives", "BNK-1", i * HOUR, amount=60_000_000.0) for i in range(4)],
        # ... while a bank that deals six times a day makes four large deals in 6 h as a habit
        *[ev("interbank_derivatives", "BNK-2", -DAY * (d + 1) + i * 4 * HOUR, amount=10_000_000.0)
          for d in range(5) for i in range(6)],
        *[ev("interbank_derivatives", "BNK-2", i * HOUR, amount=60_000_000.0) for i in range(4)],
        # AML: three deposits just under 50,000 within 24 h
        *[ev("aml_kyc", "CUS-1", i * 3 * HOUR, amount=48_000.0 + i, direction="in", memo="转账")
          for i in range(3)],
        # insurance: a large claim three weeks after the policy started
        ev("insurance_claims", "POL-1", 0 * DAY, amount=80_000.0, policy_start="2026-05-11"),
        # cyber: phishing, malware, then exfiltration on one host within the hour
        ev("cyber_security", "HOST-1", 0 * MINUTE, threat_type="phishing", detector="email_gateway"),
        ev("cyber_security", "HOST-1", 10 * MINUTE, threat_type="malware"),
        ev("cyber_security", "HOST-1", 30 * MINUTE, threat_type="insider", detector="dlp", bytes_out=5_000_000_000),
    ]
    expected = {
        ("CO-1", "enterprise_loan.loan_stacking", "high"),
        ("CARD-1", "credit_card.card_testing", "high"),
        ("TRD-1", "forex_trading.position_spike", "high"),
        ("WC-1", "wealth_product.unsuitable_sale", "medium"),
        ("WC-2", "wealth_product.churning", "medium"),
        ("ACC-1", "atm_netbank.account_takeover", "high"),
        ("BNK-1", "interbank_derivatives.exposure_concentration", "high"),
        ("CUS-1", "aml_kyc.structuring", "high"),
        ("POL-1", "insurance_claims.early_claim", "medium"),
        ("HOST-1", "cyber_security.kill_chain", "high"),
    }
    return cases, expected


def assert_context_alerts(alerts: Alerts, expected: set[tuple[str, str, str]]) -> None:
    assert summary(alerts) == expected
    by = {a["detector"]["id"]: a for a in alerts}
    assert by["credit_card.card_testing"]["evidence"]["probes_1h"] == 2
    assert by["forex_trading.position_spike"]["evidence"]["mean_90d"] == 1_000_000
    assert by["atm_netbank.account_takeover"]["evidence"]["failed_logins_1h"] == 3
    assert by["aml_kyc.structuring"]["evidence"]["near_threshold_24h"] == 3
    assert by["insurance_claims.early_claim"]["evidence"]["days_since_policy_start"] == 21
    assert by["interbank_derivatives.exposure_concentration"]["evidence"]["deals_6h"] == 4
    # Only the 4th deal fires: three in 6 h are below the rule's minimum.
    assert sum(1 for a in alerts if a["detector"]["id"] == "interbank_derivatives.exposure_concentration") == 1


@pytest.mark.parametrize("path", IN_PROCESS)
def test_each_scenarios_context_rule(path):
    events, expected = context_cases()
    assert_context_alerts(IN_PROCESS[path](events), expected)


def test_stream_alerts_follow_the_alert_schema():
    events, _ = context_cases()
    assert_alert_contract(stream_alerts(large_amount_cases() + events))


def test_a_worker_raises_exactly_these_alerts_from_the_topics(settings, worker):
    """The same cases end to end: every scenario's topic, the worker, the alert topic."""
    large = large_amount_cases()
    context, expected = context_cases()
    send(settings, large + context)
    alerts = worker_alerts(settings, worker)
    assert_alert_contract(alerts)
    assert_alerts_point_at_their_events(settings)
    cases = worker_cases(settings)  # every alert of an entity's day in one case, as the alerts make them
    assert cases == expected_cases(alerts)
    assert sum(case["alert_count"] for case in cases.values()) == len(alerts)
    large_entities = {e["entity_id"] for e in large}
    assert_large_amount_alerts([a for a in alerts if a["entity_id"] in large_entities])
    assert_context_alerts([a for a in alerts if a["entity_id"] not in large_entities], expected)


def assert_alerts_point_at_their_events(settings) -> None:
    """Each alert on the topic names its event's record (which holds that event, with the
    alert's amount, currency and counterparty) and repeats its routing fields as headers."""
    topics = Topics(settings.topics.prefix)
    records = read_topic(settings, topics.alerts)
    events = {(r.topic, r.partition, r.offset): orjson.loads(r.value)
              for r in read_to_end(settings, list(topics.scenario_topics.values()))[0]}
    assert records
    for record in records:
        alert = orjson.loads(record.value)
        assert record.headers == alert_headers(alert)
        assert record.headers["bankguard.schema"] == b"alert.v2"
        source = alert["source"]
        event = events[source["topic"], source["partition"], source["offset"]]
        assert event["event_id"] == alert["event_id"]
        for name in ("amount", "currency", "counterparty"):
            assert alert[name] == event.get(name), name
