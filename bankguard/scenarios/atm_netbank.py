"""ATM and online banking: logins, withdrawals and transfers keyed by account (operational
and network risk)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from bankguard.events import Country, EventBase, Id
from bankguard.features.spec import Feature, SinceLast, WindowFeature, Where
from bankguard.models.features import D1, H1, Categorical, Columns, Numeric, categorical, declare, numbers, texts
from bankguard.models.features import window
from bankguard.models.sequences import flag, onehot, scaled
from bankguard.rules.base import Batch
from bankguard.rules.config import RuleParams
from bankguard.rules.context import FIVE_MIN, Columns as RuleColumns, ContextRule, Values
from bankguard.scenarios.unit import Scenario


class AtmNetbankEvent(EventBase):
    """A login, withdrawal or transfer (entity: account); counterparty is the beneficiary."""

    scenario: Literal["atm_netbank"] = "atm_netbank"
    access_method: Literal["ATM", "Netbank", "MobileApp"]
    device_type: Literal["atm", "mobile", "desktop", "tablet"]
    device_id: Id
    ip_address: str
    country: Country
    action: Literal["login", "withdrawal", "transfer", "balance_inquiry"]
    login_attempts: Annotated[int, Field(ge=1, le=100)]
    success: bool


class AccountTakeoverParams(RuleParams):
    min_failed: int = Field(3, ge=1)


class AccountTakeover(ContextRule[AccountTakeoverParams]):
    id = "atm_netbank.account_takeover"
    scenario = "atm_netbank"
    summary = "A transfer to a payee not seen in 90 days within an hour of repeated failed logins."
    parameters = AccountTakeoverParams

    def declare(self, p: AccountTakeoverParams) -> tuple[Feature, ...]:
        failed = (Where("action", "==", "login"), Where("success", "==", False))
        return (WindowFeature("failed_logins_1h", "count", FIVE_MIN, 12, where=failed),
                SinceLast("payee_last_seen", "counterparty"))

    def assess(self, batch: Batch, p: AccountTakeoverParams) -> tuple[np.ndarray, RuleColumns]:
        failed = batch.feature("failed_logins_1h")
        new_payee = np.isinf(batch.feature("payee_last_seen"))
        mask = (batch.column("action") == "transfer") & (failed >= p.min_failed) & new_payee
        return mask, {"failed_logins_1h": failed, "amount": batch.column("amount", numeric=True)}

    def reasons(self, v: Values, p: AccountTakeoverParams) -> list[str]:
        return [f"{int(v['failed_logins_1h'])} failed logins in the last hour",
                f"transfer of {v['amount']:,.2f} to a payee not seen in 90 days"]


def derive(c: Columns, w: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    amount = np.nan_to_num(numbers(c, "amount"), nan=0.0)
    action = texts(c, "action")
    withdrawal = (action == "withdrawal").astype(np.float64)
    return {"atm_cash_1h_with_this": np.log1p(w["m_cash_sum_1h"] + withdrawal * amount),
            "atm_cash_1d_with_this": np.log1p(w["m_cash_sum_1d"] + withdrawal * amount)}


WITHDRAWAL, TRANSFER, FAILED = (Where("action", "==", "withdrawal"),), (Where("action", "==", "transfer"),), \
    (Where("success", "==", False),)

SCENARIO = Scenario(
    key="atm_netbank", name="ATM and online banking", entity="account", entity_prefix="ACC",
    risk_types=("operational", "network"), controls=("2FA", "firewall"),
    event=AtmNetbankEvent,
    rules=(AccountTakeover,),
    features=declare(
        "atm_netbank",
        (SinceLast("m_device_seen", "device_id"), SinceLast("m_ip_seen", "ip_address"),
         SinceLast("m_payee_seen", "counterparty"),
         window("m_failed_1h", "count", H1, where=FAILED), window("m_failed_1d", "count", D1, where=FAILED),
         window("m_withdrawals_1h", "count", H1, where=WITHDRAWAL),
         window("m_cash_sum_1h", "sum", H1, "abs_amount", where=WITHDRAWAL),
         window("m_cash_sum_1d", "sum", D1, "abs_amount", where=WITHDRAWAL),
         window("m_transfer_sum_1d", "sum", D1, "abs_amount", where=TRANSFER)),
        (Numeric("login_attempts"), Numeric("success", "bool")),
        (categorical(AtmNetbankEvent, "access_method"), categorical(AtmNetbankEvent, "device_type"),
         categorical(AtmNetbankEvent, "action"), Categorical("country", ("CN", "HK", "MO", "SG", "JP"))),
        derive, ("atm_cash_1h_with_this", "atm_cash_1d_with_this"), ("action",)),
    sequence=(onehot("action", ("login", "withdrawal", "transfer", "balance_inquiry")),
              flag("success", lambda v: v is True), scaled("login_attempts", 10.0),
              onehot("access_method", ("ATM", "Netbank", "MobileApp")),
              flag("country", lambda v: v == "CN")),
    generator="AtmNetbankGenerator",
)
