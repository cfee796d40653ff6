"""``bankguard backtest``: what configs A (and B) would have alerted over a range, against the truth."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from bankguard import cli_options
from bankguard.errors import BankguardError
from bankguard.event_files import EVENT_SUFFIXES
from bankguard.settings import Settings, get_settings

if TYPE_CHECKING:  # loading models pulls onnxruntime: only when asked for
    from bankguard.models.scoring import ModelScorer
    from bankguard.outcomes import OutcomeLog

console = Console(stderr=True)


def backtest(
    source: Annotated[str, typer.Option(
        help="Events: a file (.parquet, .jsonl), 'kafka' (every scenario topic), or topics/scenarios, comma-separated.")],
    start: Annotated[str | None, typer.Option("--from", help="Start of the range, ISO 8601 (default: the first event).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="End of the range, exclusive (default: after the last event).")] = None,
    config: Annotated[Path | None, typer.Option(help="Rules YAML of config A (default: the built-in rules).")] = None,
    against: Annotated[Path | None, typer.Option(help="Rules YAML of config B, compared with A.")] = None,
    truth: Annotated[str | None, typer.Option(help="Ground truth: a file (.parquet, .jsonl), 'kafka' (the truth topic) or a topic.")] = None,
    outcomes: Annotated[str | None, typer.Option(
        help="Confirmed outcomes: a file (.parquet, .jsonl; `produce --out` writes <name>.outcomes.<ext>), 'kafka' (the outcomes topic) or a topic; each event sees only those decided before it.")] = None,
    models: Annotated[bool | None, typer.Option("--models/--no-models",
        help="Also score with each scenario's champion model (default: as the workers, BANKGUARD_MODELS__ENABLED).")] = None,
    scenarios: Annotated[str, typer.Option(help="'all' or a comma-separated list.")] = "all",
    warmup_days: Annotated[float, typer.Option(help="Days before --from loaded as history (90-day baselines).", min=0, max=36_500, callback=cli_options.finite)] = 91.0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON here.", dir_okay=False, callback=cli_options.output_file)] = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write per-detector metrics as CSV here.", dir_okay=False, callback=cli_options.output_file)] = None,
    pdf_out: Annotated[Path | None, typer.Option("--pdf", help="Write the PDF risk report here.", dir_okay=False, callback=cli_options.output_file)] = None,
    alerts_csv: Annotated[Path | None, typer.Option(help="Write config A's alerts as CSV here.", dir_okay=False, callback=cli_options.output_file)] = None,
    events_csv: Annotated[Path | None, typer.Option(help="Export the range's scored events (with A's alerts) as CSV.", dir_okay=False, callback=cli_options.output_file)] = None,
) -> None:
    """Backtest rule (and model) configs over a time range of events, against the ground truth."""
    from bankguard.backtest import outputs
    from bankguard.backtest.runner import Config, resolve_source, run_backtest
    from bankguard.rules.config import load_rules
    from bankguard.scenarios import parse_scenarios
    from bankguard.topic_range import parse_time

    settings = get_settings()
    try:
        keys = parse_scenarios(scenarios)
    except ValueError as exc:
        raise BankguardError(str(exc)) from None
    outcome_log = None if outcomes is None else _outcomes(settings, outcomes)
    configs = [Config("A", config, load_rules(config))]
    if against is not None:
        configs.append(Config("B", against, load_rules(against)))
    run = run_backtest(
        settings, resolve_source(source, settings), configs,
        start_ms=None if start is None else parse_time(start, "--from"),
        end_ms=None if end is None else parse_time(end, "--to"),
        truth_source=None if truth is None else resolve_source(truth, settings, truth=True),
        models=_models(settings, models), scenarios=keys, warmup_days=warmup_days, outcomes=outcome_log,
        outcomes_source=outcomes)
    # Tables stay whole when piped to a file or a CI log (rich would wrap them at 80 columns).
    outputs.print_report(run.report, Console(width=None if sys.stdout.isatty() else 160))
    if json_out is not None:
        outputs.write_json(run.report, json_out)
    if csv_out is not None:
        outputs.write_metrics_csv(run.report, csv_out)
    if alerts_csv is not None:
        outputs.write_alerts_csv(run.detections["A"], run.truth, alerts_csv)
    if events_csv is not None:
        outputs.write_events_csv(run.events, run.window, run.detections["A"], run.truth, events_csv)
    if pdf_out is not None:
        from bankguard.backtest.pdf import write_pdf

        write_pdf(run.report, pdf_out)
    written = [str(p) for p in (json_out, csv_out, pdf_out, alerts_csv, events_csv) if p is not None]
    if written:
        console.print(f"wrote {', '.join(written)}")


def _outcomes(settings: Settings, spec: str) -> OutcomeLog:
    """``--outcomes``: a file (by its suffix, a slash or its existence), ``kafka`` (the
    outcomes topic of the configured prefix) or a topic name."""
    from bankguard.outcomes import read_outcomes_file, read_outcomes_topic
    from bankguard.topics import Topics

    path = Path(spec)
    if path.suffix.lower() in EVENT_SUFFIXES or "/" in spec or path.exists():
        return read_outcomes_file(path)
    return read_outcomes_topic(settings, Topics(settings.topics.prefix).outcomes if spec == "kafka" else spec)


def _models(settings: Settings, wanted: bool | None) -> ModelScorer | None:
    """The champions, when asked for or enabled; missing artifacts are an error only when asked."""
    if wanted is False or (wanted is None and not settings.models.enabled):
        return None
    from bankguard.models.registry import ArtifactError, default_dir
    from bankguard.models.scoring import ModelScorer

    try:
        return ModelScorer(settings.models.dir or default_dir(), shadows=False)
    except ArtifactError as exc:
        if wanted:
            raise BankguardError(str(exc)) from None
        console.print(f"note: scoring with rules only ({exc})", markup=False)
        return None
