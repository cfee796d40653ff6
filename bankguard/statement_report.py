"""Readable terminal output of a statement scan (rich tables)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from bankguard.statement_scan import ScanResult

SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}


def print_scan(result: ScanResult, console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=f"Anomalies in {result.summary['file']}", show_lines=True)
    for column in ("line", "tx", "account", "time", "amount", "severity", "rule", "reasons"):
        table.add_column(column, justify="right" if column in ("line", "amount") else "left")
    for anomaly in result.anomalies:
        table.add_row(str(anomaly["line"]), anomaly["tx_id"], anomaly["account"], anomaly["time"],
                      f"{anomaly['amount']:,.2f}",
                      f"[{SEVERITY_STYLE[anomaly['severity']]}]{anomaly['severity']}[/]",
                      anomaly["rule"], "\n".join(anomaly["reasons"]))
    console.print(table)
    for row in result.rejected:
        console.print(f"line {row.line}: rejected: {row.reason}", markup=False)
    s = result.summary
    console.print(f"{s['scanned']} rows scanned in {s['accounts']} account(s), {s['anomalies']} anomalies "
                  f"({', '.join(f'{k}: {v}' for k, v in s['by_severity'].items()) or 'none'}), "
                  f"{s['rejected']} rejected row(s); rules {s['rules_config_version']}")


def print_rejection_summary(result: ScanResult, console: Console) -> None:
    """One line on ``console`` (stderr) when rows were rejected, so a pipe of the report
    still tells the person at the terminal that rows were left out, and where they are listed."""
    s = result.summary
    if not s["rejected"]:
        return
    kinds = ", ".join(f"{kind}: {count}" for kind, count in s["rejected_by_reason"].items())
    console.print(f"{s['file']}: {s['rejected']} of {s['rows']} row(s) rejected ({kinds}); each is listed with its "
                  "line and reason under 'rejected' in the report", markup=False, soft_wrap=True)
