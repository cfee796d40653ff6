"""Model reasons state quantities a risk officer can check, read back from the model row."""

from __future__ import annotations

import math

import pytest

from bankguard.models.features import NEVER_SECONDS, scenario_features
from bankguard.models.reasons import describe, duration
from bankguard.scenarios import SCENARIOS


def card_row(**values: float) -> dict[str, float]:
    amount, mean = 1_000.0, 200.0
    return {"log_amount": math.log1p(amount), "amt_ratio_30d": math.log((amount + 1) / (mean + 1)),
            "log_cnt_1h": math.log1p(3), "log_since_device_seen": math.log1p(NEVER_SECONDS) + 1.0,
            "log_since_ip_seen": math.log1p(7_200), "burst_1h": math.log(4.0), "cp_fraud_rate": 0.125,
            "merchant_category=6011": 1.0, "country=<other>": 1.0, **values}


@pytest.mark.parametrize(("column", "text"), [
    ("amt_ratio_30d", "amount 5.0x this card's 30-day mean (200.00)"),
    ("log_amount", "amount 1,000.00"),
    ("log_cnt_1h", "3 earlier events of this card in the last hour"),
    ("log_since_device_seen", "this device never seen before"),
    ("log_since_ip_seen", "this IP address last seen 2 h earlier"),
    ("burst_1h", "last hour's events 4.0x this card's usual hourly rate"),
    ("cp_fraud_rate", "counterparty's confirmed fraud rate 12.5%"),
    ("merchant_category=6011", "merchant category 6011"),
    ("country=<other>", "country outside the usual ones"),
])
def test_a_reason_says_the_quantity(column, text):
    assert describe(column, card_row(), "card") == text


@pytest.mark.parametrize(("seconds", "text"), [(40, "40 s"), (720, "12 min"), (5 * 3_600, "5 h"),
                                               (3 * 86_400, "3 days")])
def test_durations_read_as_people_say_them(seconds, text):
    assert duration(seconds) == text


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_every_model_column_of_every_scenario_has_a_reason(scenario):
    columns = scenario_features(scenario).columns
    row = dict.fromkeys(columns, 0.5)
    for column in columns:
        text = describe(column, row, SCENARIOS[scenario].entity)
        assert text and "=" not in text, (column, text)
        named = column.split("=")[0]  # a category's value may have an underscore; its field reads as words
        assert "_" not in named or named not in text, (column, text)


def test_a_scenario_window_without_a_phrase_reads_its_value_back():
    row = {"log_in_sum_24h": math.log1p(279_669.54), "log_failed_1h": math.log1p(3)}
    assert describe("log_in_sum_24h", row, "customer") == "in sum 24h 279,670"
    assert describe("log_failed_1h", row, "account") == "failed 1h 3"
