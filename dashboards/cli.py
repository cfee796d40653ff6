"""``bankguard dashboards ...``: build the dashboard JSON and push it to a live Grafana.

Registered in ``bankguard.cli`` with ``app.add_typer(dashboards_app, name="dashboards")``;
failures raise :class:`~bankguard.errors.BankguardError`, which ``bankguard.cli.main``
prints as one line with a non-zero exit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bankguard import cli_options

app = typer.Typer(help="Grafana dashboards as code.", no_args_is_help=True)
console = Console(stderr=True)


def _default_dir() -> Path:
    from bankguard.dashboards.grafana.build import JSON_DIR

    return JSON_DIR


@app.command()
def build(
    out: Annotated[Path | None, typer.Option(help="Where to write <uid>.json (default: the committed dashboards/grafana/json).",
                                             file_okay=False, callback=cli_options.output_dir)] = None,
) -> None:
    """Render every dashboard to JSON (deterministic: commit the result)."""
    from bankguard.dashboards.grafana.build import build_all
    from bankguard.errors import BankguardError

    try:
        paths = build_all(out or _default_dir())
    except OSError as exc:
        raise BankguardError(f"cannot write dashboards to {out}: {exc.strerror or exc}") from None
    for path in paths:
        console.print(str(path), markup=False)


@app.command()
def push(
    url: Annotated[str, typer.Option(help="Grafana base URL, e.g. http://localhost:3000.", envvar="GRAFANA_URL")],
    token: Annotated[str, typer.Option(help="Service account token (Editor or Admin).", envvar="GRAFANA_TOKEN")],
    json_dir: Annotated[Path | None, typer.Option("--dir", help="Dashboard JSON to upload (default: the committed set).",
                                             file_okay=False, exists=True)] = None,
) -> None:
    """Upload the dashboards into the "bankguard" folder, overwriting older versions."""
    from bankguard.dashboards.grafana.push import push_all

    uids = push_all(url, token, json_dir or _default_dir())
    console.print(f"pushed {len(uids)} dashboard(s) to {url}: {', '.join(uids)}", markup=False)
