"""``bankguard models ...`` and ``bankguard train``: the model arena's commands (Typer).

Registered by the main CLI (``app.add_typer(models_app, name="models")`` and
``app.command("train")(train)``).
User mistakes raise :class:`BankguardError`, which the CLI's ``main`` turns into one
line on stderr and a non-zero exit.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bankguard import cli_options
from bankguard.errors import BankguardError
from bankguard.models.budget import DEFAULT_BUDGET_PER_1000
from bankguard.scenarios import parse_scenarios

app = typer.Typer(help="Model arena: train, compare and report the risk models.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
console = Console(stderr=True)


def _out() -> Console:
    """Tables on stdout; wide enough for the arena's twelve columns when piped."""
    return Console(width=None if sys.stdout.isatty() else 170)


def trained_dir() -> Path:
    """Where ``train`` writes by default: ``$BANKGUARD_RUN_DIR/models``."""
    from bankguard.settings import get_settings

    return Path(get_settings().run_dir) / "models"


def _recorded_scenarios(events: Path) -> list[str]:
    """The scenarios present in a recorded events file, in catalog order."""
    from bankguard.recorded import scenarios_in
    from bankguard.scenarios import SCENARIOS

    seen = set(scenarios_in(events))
    present = [key for key in SCENARIOS if key in seen]
    if not present:
        raise BankguardError(f"{events} holds no events of a known scenario")
    return present


def _day(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


@app.command()
def train(
    scenarios: Annotated[str, typer.Option(help="'all' or a comma-separated list.")] = "all",
    out: Annotated[Path | None, typer.Option(help="Registry directory to write (default: $BANKGUARD_RUN_DIR/models).",
                                             file_okay=False, callback=cli_options.output_dir)] = None,
    quick: Annotated[bool, typer.Option(help="Small data and models: a first start in under a minute.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the generated data and of every model.")] = 7,
    k: Annotated[int, typer.Option(help="Daily CP@k: cases an investigations team takes per day.", min=1)] = 10,
    forecast: Annotated[bool, typer.Option(help="Also train the high-risk ratio forecasters.")] = True,
    entities: Annotated[int | None, typer.Option(help="Simulated entities per scenario (default: the profile's).",
                                                 min=10)] = None,
    events_per_day: Annotated[int | None, typer.Option(help="Simulated events per scenario and day "
                                                       "(default: the profile's).", min=100)] = None,
    events: Annotated[Path | None, typer.Option(help="Train on recorded events (Parquet as 'produce --out' "
                                                     "writes, or JSON lines as on the topics) instead of "
                                                     "generated traffic.", dir_okay=False)] = None,
    truth: Annotated[Path | None, typer.Option(help="Ground truth of --events (Parquet or JSON lines of truth "
                                                    "records).", dir_okay=False)] = None,
    train_from: Annotated[str | None, typer.Option(help="With --events: first day fitted (default: after a "
                                                        "warm-up of a tenth of the days, at most 5).",
                                                   callback=cli_options.day)] = None,
    train_to: Annotated[str | None, typer.Option(help="With --events: end of fit and validation, exclusive "
                                                      "(default: test-from minus the gap).",
                                                 callback=cli_options.day)] = None,
    test_from: Annotated[str | None, typer.Option(help="With --events: first test day (default: the last "
                                                       "quarter of the days).", callback=cli_options.day)] = None,
    test_to: Annotated[str | None, typer.Option(help="With --events: end of the test period, exclusive "
                                                     "(default: after the last event).",
                                                callback=cli_options.day)] = None,
    val_days: Annotated[int | None, typer.Option(help="With --events: validation days at the end of the "
                                                      "training period (default: 15% of the days).", min=1)] = None,
    gap_days: Annotated[int | None, typer.Option(help="With --events: days between training and test "
                                                      "(default: 1, or 3 from 20 days on).", min=0)] = None,
    max_fit_rows: Annotated[int | None, typer.Option(help="Rows models are fitted on: every fraud and legitimate "
                                                          "rows sampled to this total (default: the profile's, "
                                                          "40,000; 25,000 with --quick).", min=100)] = None,
    budget: Annotated[float, typer.Option(help="Alert budget: at most this many model alerts per 1,000 events "
                                               "of a scenario (it caps each model's threshold).",
                                          min=0.001, max=1000, callback=cli_options.finite)] = DEFAULT_BUDGET_PER_1000,
) -> None:
    """Train the six arena models per scenario, compare them on held-out days, write artifacts."""
    from bankguard.models.arena import render_table
    from bankguard.models.build import train_all
    from bankguard.models.dataset import DEFAULT_SPLIT, SplitDates

    try:
        keys = parse_scenarios(scenarios)
    except ValueError as exc:
        raise BankguardError(str(exc)) from None
    if (events is None) != (truth is None):
        raise BankguardError("--events and --truth go together")
    dates = SplitDates(_day(train_from), _day(train_to), _day(test_from), _day(test_to), val_days, gap_days)
    if events is None and dates != DEFAULT_SPLIT:
        raise BankguardError("--train-from, --train-to, --test-from, --test-to, --val-days and --gap-days "
                             "cut recorded traffic: give --events and --truth")
    if events is not None and scenarios.strip() == "all":
        keys = _recorded_scenarios(events)
    target = out or trained_dir()
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BankguardError(f"cannot create {target}: {exc.strerror}") from None
    report = train_all(keys, target, "quick" if quick else "full", seed, k, forecast,
                       progress=lambda line: console.print(line),
                       recorded=(events, truth) if events is not None and truth is not None else None,
                       traffic={k: v for k, v in {"n_entities": entities, "events_per_day": events_per_day}.items()
                                if v is not None}, budget=budget, dates=dates, max_fit_rows=max_fit_rows)
    _out().print(render_table({**report, "scenarios": {s: report["scenarios"][s] for s in keys}}))
    console.print(f"artifacts and arena.json in {target} ({report['total_seconds']:.0f}s)")


@app.command()
def report(
    directory: Annotated[Path | None, typer.Option("--dir", help="Registry directory (default: trained, else shipped).",
                                             file_okay=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the arena report as JSON.")] = False,
) -> None:
    """Show the arena: every model's held-out measures, latency and the champions."""
    from bankguard.models.arena import load_report, render_table
    from bankguard.models.registry import default_dir

    root = directory or default_dir()
    if not root.is_dir():
        raise BankguardError(f"no registry directory {root}")
    data = load_report(root)
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        return
    _out().print(render_table(data))
    forecasts = data.get("forecast") or {}
    if forecasts:
        from rich.table import Table

        table = Table(title="High-risk ratio forecast, backtest MAE (LSTM / naive last value)")
        table.add_column("scenario")
        for h in ("1", "5", "15"):
            table.add_column(f"{h} min", justify="right")
        for scenario, entry in forecasts.items():
            table.add_row(scenario, *(f"{entry['mae'][h]:.4f} / {entry['naive_last_value_mae'][h]:.4f}"
                                      for h in ("1", "5", "15")))
        _out().print(table)
    console.print(f"from {root}")


@app.command()
def verify(
    directory: Annotated[Path | None, typer.Option("--dir", help="Registry directory (default: trained, else shipped).",
                                             file_okay=False)] = None,
) -> None:
    """Load every artifact as the worker would (sha256 and feature spec checks)."""
    from bankguard.models.registry import default_dir
    from bankguard.models.scoring import ModelScorer

    root = directory or default_dir()
    scorer = ModelScorer(root)
    for scenario in scorer.scenarios:
        console.print(f"{scenario}: {len(scorer.models(scenario))} models, champion {scorer.champion(scenario)}")
    console.print(f"all artifacts in {root} verified")
