"""Scan a statement CSV with the stream's rules, in batch: anomalies with reasons.

The rows become the same ``aml_kyc`` events that statement ingest publishes, their
features come from the vectorised engine (sorted once, per-account windows by binary
search), and the same rule code decides; so a scan and the stream agree.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bankguard.rules import evaluate_frame
from bankguard.rules.config import RulesConfig
from bankguard.statements import STATEMENT_SCENARIO, RejectedRow, read_statement, reason_kind, statement_frame


@dataclass(frozen=True)
class ScanResult:
    anomalies: list[dict[str, Any]]
    rejected: list[RejectedRow]
    summary: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "anomalies": self.anomalies,
            "rejected": [{"line": row.line, "reason": row.reason} for row in self.rejected],
            "summary": self.summary,
        }


def scan_statement(path: Path, config: RulesConfig, *, account: str | None = None,
                   timezone: str = "Asia/Shanghai", encoding: str = "auto") -> ScanResult:
    """Score every usable row of the statement; rejected rows are listed with their reasons."""
    statement = read_statement(path, account=account, timezone=timezone, encoding=encoding)
    frame = statement_frame(statement)
    _, hits = evaluate_frame(frame, STATEMENT_SCENARIO, config)
    tx_ids, accounts = frame["tx_id"].tolist(), frame["entity_id"].tolist()
    lines, times, amounts = frame["line"].tolist(), frame["event_time"].tolist(), frame["amount"].tolist()
    anomalies = [
        {
            "tx_id": tx_ids[hit.row], "account": accounts[hit.row], "line": lines[hit.row],
            "time": times[hit.row], "amount": amounts[hit.row], "severity": hit.severity,
            "rule": hit.rule, "rule_version": hit.version, "reasons": list(hit.reasons),
            "evidence": hit.evidence,
        }
        for hit in hits
    ]
    summary = {
        "file": str(path),
        "encoding": statement.encoding,
        "rows": len(frame) + len(statement.rejected),
        "scanned": len(frame),
        "rejected": len(statement.rejected),
        "rejected_by_reason": dict(Counter(reason_kind(row.reason) for row in statement.rejected)),
        "accounts": int(frame["entity_id"].nunique()),
        "anomalies": len(anomalies),
        "by_severity": dict(Counter(a["severity"] for a in anomalies)),
        "by_rule": dict(Counter(a["rule"] for a in anomalies)),
        "rules_config_version": config.version,
    }
    return ScanResult(anomalies, statement.rejected, summary)
