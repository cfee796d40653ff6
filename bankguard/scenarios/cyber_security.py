"""Cyber-security monitoring: detections keyed by host (network and fraud risk). The events
carry no money, so ``amount`` stays empty and the models read no amount features."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from bankguard.events import EventBase
from bankguard.features.spec import Feature, SinceLast, WindowFeature, Where
from bankguard.models.features import (D30, H1, M10, Columns, Numeric, categorical, declare, log_ratio, mean_of,
                                       numbers, vocabulary, window)
from bankguard.models.sequences import onehot, scaled
from bankguard.rules.base import Batch
from bankguard.rules.context import FIVE_MIN, Columns as RuleColumns, ContextRule, NoParams, Values
from bankguard.scenarios.unit import Scenario


class CyberSecurityEvent(EventBase):
    """A security detection (entity: host); counterparty is the remote address."""

    scenario: Literal["cyber_security"] = "cyber_security"
    threat_type: Literal["phishing", "malware", "ddos", "insider"]
    systems_affected: Annotated[int, Field(ge=1, le=10_000)]
    severity_score: Annotated[float, Field(ge=0, le=10)]
    bytes_out: Annotated[int, Field(ge=0)]
    detector: Literal["ids", "edr", "email_gateway", "dlp", "waf"]


class KillChain(ContextRule[NoParams]):
    id = "cyber_security.kill_chain"
    scenario = "cyber_security"
    summary = "Data leaving a host within an hour of phishing and malware detections on it."
    parameters = NoParams

    def declare(self, p: NoParams) -> tuple[Feature, ...]:
        return tuple(WindowFeature(f"{threat}_1h", "count", FIVE_MIN, 12, where=(Where("threat_type", "==", threat),))
                     for threat in ("phishing", "malware"))

    def assess(self, batch: Batch, p: NoParams) -> tuple[np.ndarray, RuleColumns]:
        phishing, malware = batch.feature("phishing_1h"), batch.feature("malware_1h")
        mask = (batch.column("threat_type") == "insider") & (phishing > 0) & (malware > 0)
        return mask, {"phishing_1h": phishing, "malware_1h": malware,
                      "bytes_out": batch.column("bytes_out", numeric=True)}

    def reasons(self, v: Values, p: NoParams) -> list[str]:
        return [(f"exfiltration of {v['bytes_out']:,.0f} bytes after {int(v['phishing_1h'])} phishing and "
                f"{int(v['malware_1h'])} malware detections within the hour")]


def derive(c: Columns, w: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    bytes_out = numbers(c, "bytes_out")
    return {"bytes_vs_30d": log_ratio(bytes_out, mean_of(w["m_bytes_sum_30d"], w["m_cnt_30d"])),
            "systems_vs_1h_max": np.log1p(numbers(c, "systems_affected")) - np.log1p(w["m_systems_max_1h"])}


SCENARIO = Scenario(
    key="cyber_security", name="Cyber-security monitoring", entity="host", entity_prefix="HOST",
    risk_types=("network", "fraud"), controls=("intrusion detection",),
    event=CyberSecurityEvent,
    rules=(KillChain,),
    features=declare(
        "cyber_security",
        tuple(window(f"m_{threat}_1h", "count", H1, where=(Where("threat_type", "==", threat),))
              for threat in vocabulary(CyberSecurityEvent, "threat_type"))
        + (window("m_n_10m", "count", M10), window("m_systems_max_1h", "max", H1, "systems_affected"),
           window("m_severity_max_1h", "max", H1, "severity_score"),
           window("m_bytes_sum_30d", "sum", D30, "bytes_out"),
           SinceLast("m_remote_seen", "counterparty")),
        (Numeric("severity_score"), Numeric("systems_affected", "log1p"), Numeric("bytes_out", "log1p")),
        (categorical(CyberSecurityEvent, "threat_type"), categorical(CyberSecurityEvent, "detector")),
        derive, ("bytes_vs_30d", "systems_vs_1h_max"), ("bytes_out", "systems_affected"), amount=False),
    sequence=(onehot("threat_type", ("phishing", "malware", "ddos", "insider")),
              onehot("detector", ("ids", "edr", "email_gateway", "dlp", "waf")),
              scaled("severity_score", 10.0), scaled("systems_affected", 5.0, log=True),
              scaled("bytes_out", 20.0, log=True)),
    generator="CyberSecurityGenerator",
)
