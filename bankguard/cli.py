"""The ``bankguard`` command line (Typer).

Every user mistake (wrong path, option, value, busy port) ends in one line on stderr
and a non-zero exit, never a traceback: see :func:`main`.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bankguard import __version__, cli_options
from bankguard.backtest.replay_cli import replay
from bankguard.backtest.cli import backtest
from bankguard.dashboards.cli import app as dashboards_app
from bankguard.models.cli import app as models_app
from bankguard.models.cli import train as models_train
from bankguard.cli_errors import run
from bankguard.errors import BankguardError
from bankguard.output_files import write_text_atomic
from bankguard.scenarios import parse_scenarios
from bankguard.settings import Settings, get_settings

app = typer.Typer(
    help="Real-time bank risk monitoring on Kafka.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
ingest_app = typer.Typer(help="Publish external files as events.", no_args_is_help=True)
schemas_app = typer.Typer(help="Event and alert schemas.", no_args_is_help=True)
statements_app = typer.Typer(help="Bank statements (CSV).", no_args_is_help=True)
rules_app = typer.Typer(help="Rules configuration.", no_args_is_help=True)
app.add_typer(ingest_app, name="ingest")
app.add_typer(schemas_app, name="schemas")
app.add_typer(statements_app, name="statements")
app.add_typer(rules_app, name="rules")
app.add_typer(dashboards_app, name="dashboards")
app.add_typer(models_app, name="models")
app.command("backtest")(backtest)
app.command("train", help="Train the six models per scenario and the risk forecast (same as 'models train').")(
    models_train)
app.command("replay")(replay)


def _print_version(value: bool) -> None:
    if value:
        print(f"bankguard {__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                                   help="Print the version and exit.")] = False) -> None:
    pass

console = Console(stderr=True)
TIMEZONE_HELP = "Time zone of datetimes without an offset (IANA name); times with an offset or Z keep theirs."
ENCODING_HELP = "Text encoding of the file: auto (UTF-8, UTF-8 with BOM, else GB18030, which covers GBK) or a codec name."


def _settings(**overrides: object) -> Settings:
    """Environment settings with the command's explicit options applied on top."""
    settings = get_settings()
    for path, value in overrides.items():
        if value is None:
            continue
        group, _, field = path.partition("__")
        section = getattr(settings, group)
        settings = settings.model_copy(update={group: section.model_copy(update={field: value})})
    return settings


def _stop_flag() -> threading.Event:
    """An event set by SIGINT/SIGTERM, so loops finish cleanly (flush, report)."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


@app.command()
def broker(
    host: Annotated[str | None, typer.Option(help="Listen address.", callback=cli_options.listen_host)] = None,
    port: Annotated[int | None, typer.Option(help="Listen port.", min=1, max=65535)] = None,
) -> None:
    """Run the embedded Kafka-compatible broker (Tansu) and create the topics."""
    from bankguard.broker import EmbeddedBroker
    from bankguard.kafka import bankguard_topics, ensure_topics

    settings = _settings(broker__host=host, broker__port=port)
    embedded = EmbeddedBroker(settings.broker.host, settings.broker.port,
                              startup_timeout_s=settings.broker.startup_timeout_s)
    stop = _stop_flag()
    with embedded:
        settings = settings.model_copy(update={"kafka": settings.kafka.model_copy(
            update={"bootstrap_servers": embedded.bootstrap_servers})})
        created = ensure_topics(settings, bankguard_topics(settings))
        console.print(f"broker listening on {embedded.bootstrap_servers} "
                      f"({len(created)} topics created); Ctrl-C stops it")
        while not stop.wait(0.5):
            if embedded.process and not embedded.process.alive():
                raise BankguardError(f"broker exited with code {embedded.process.returncode}")


@app.command()
def topics() -> None:
    """Create any missing bankguard topic on the configured cluster."""
    from bankguard.kafka import bankguard_topics, ensure_topics

    settings = _settings()
    created = ensure_topics(settings, bankguard_topics(settings))
    console.print(f"created {len(created)} topic(s)" + (f": {', '.join(created)}" if created else ""))


@app.command()
def produce(
    scenarios: Annotated[str, typer.Option(help="'all' or a comma-separated list.")] = "all",
    rate: Annotated[float, typer.Option(help="Events per second of event time, all scenarios together.", min=0.001, callback=cli_options.finite)] = 200.0,
    duration: Annotated[float | None, typer.Option(help="Stop after this many wall-clock seconds.", min=0, callback=cli_options.finite)] = None,
    count: Annotated[int | None, typer.Option(help="Stop after about this many events.", min=1)] = None,
    days: Annotated[float | None, typer.Option(help="Stop after this much event time, in days (a day holds rate x 86,400 events).", min=0.0001, max=36_500, callback=cli_options.finite)] = None,
    start: Annotated[str | None, typer.Option(help="Event time of the first event, ISO 8601 (default: now).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed: same seed, same events.")] = None,
    speed: Annotated[float | None, typer.Option(help="Event time per wall second (1 = real time, 0 = as fast as possible; default 1, or 0 with --out).", min=0, callback=cli_options.finite)] = None,
    entities: Annotated[int | None, typer.Option(help="Entities (customers, cards, hosts...) per scenario (default: BANKGUARD_PRODUCER__ENTITIES_PER_SCENARIO).", min=10)] = None,
    out: Annotated[Path | None, typer.Option(help="Write the events to this file (.parquet or .jsonl) instead of Kafka; truth goes beside it as <name>.truth.<ext>, the investigations desk's outcomes as <name>.outcomes.<ext>.", dir_okay=False, callback=cli_options.output_file)] = None,
    report: Annotated[Path | None, typer.Option(help="Write the run's counts as JSON here.", dir_okay=False, callback=cli_options.output_file)] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress display.")] = True,
    metrics_port: Annotated[int | None, typer.Option(help="Serve producer metrics on this port.", min=1, max=65535)] = None,
) -> None:
    """Publish synthetic events for the scenarios (ground truth to the truth topic)."""
    from bankguard.producers.publisher import FileSink, ScenarioPublisher
    from bankguard.producers.progress import ProgressDisplay

    try:
        keys = parse_scenarios(scenarios)
    except ValueError as exc:
        raise BankguardError(str(exc)) from None
    if seed is None:
        seed = int.from_bytes(os.urandom(3), "big")
    settings = _settings(producer__entities_per_scenario=entities)
    from bankguard.time_zones import check_time_range
    from bankguard.topic_range import iso_ms, parse_time

    start_ms = None if start is None else check_time_range(parse_time(start, "--start"), f"--start {start!r}")
    speed = speed if speed is not None else (0.0 if out is not None else 1.0)
    publisher = ScenarioPublisher(settings, keys, rate=rate, seed=seed, speed=speed, start_ms=start_ms, out=out)
    if metrics_port is not None:
        from bankguard.producers.metrics import serve_metrics

        try:
            serve_metrics(publisher.report, metrics_port, settings.producer.metrics_bind)
        except OSError as exc:
            raise BankguardError(f"cannot serve producer metrics on port {metrics_port}: {exc.strerror}") from None
    stop = _stop_flag()
    with ProgressDisplay(enabled=progress and sys.stderr.isatty(), total=count) as display:
        result = publisher.run(duration_s=duration, max_events=count, should_stop=stop.is_set,
                               span_ms=None if days is None else int(days * 86_400_000), on_progress=display.update)
    summary = result.as_dict()
    if report is not None:
        write_text_atomic(report, json.dumps(summary, indent=2))
    problem = result.delivery_problem()
    if problem is not None:
        raise BankguardError(problem)
    first_ms, last_ms = result.event_time_ms or (0, 0)
    console.print(f"produced {result.produced} events ({summary['events_per_s']}/s): {result.sent} sent, "
                  f"{result.produced} acknowledged, {result.failed} failed, {result.unacknowledged} unacknowledged, "
                  f"seed {seed}, event time {iso_ms(first_ms)} to {iso_ms(last_ms)}"
                  + (f", to {out} (truth: {publisher.sink.truth_path})" if isinstance(publisher.sink, FileSink) else ""))
    if isinstance(publisher.sink, FileSink) and out is not None:
        from bankguard.producers.investigations import write_file_outcomes

        path, written = write_file_outcomes(settings, out, publisher.sink.truth_path)
        console.print(f"investigations desk: {written} outcomes to {path}")


@app.command()
def investigations(
    capacity: Annotated[int | None, typer.Option(help="Entities investigated per scenario per day (default: BANKGUARD_INVESTIGATIONS__CAPACITY_PER_DAY).", min=0)] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the desk's delays and chargebacks (default: BANKGUARD_INVESTIGATIONS__SEED).")] = None,
) -> None:
    """Run the investigations desk: cases and truth in, confirmed outcomes out (the outcomes topic)."""
    from bankguard.producers.investigations_stream import run_desk

    settings = _settings(investigations__capacity_per_day=capacity, investigations__seed=seed)
    stop = _stop_flag()
    report = run_desk(settings, should_stop=stop.is_set, on_ready=lambda: console.print(
        f"investigations desk: k={settings.investigations.capacity_per_day} per scenario per day; Ctrl-C stops it"))
    console.print(f"read {report.cases} case records and {report.truth} truth records ({report.invalid} unreadable), "
                  f"wrote {report.outcomes} outcomes ({report.skipped} already on the topic)")


@app.command()
def evaluate(
    metrics_port: Annotated[int | None, typer.Option(help="Port of /metrics (default: BANKGUARD_EVALUATOR__METRICS_PORT).", min=0, max=65535)] = None,
    report: Annotated[Path | None, typer.Option(help="On stop, write the final figures as JSON here.", dir_okay=False, callback=cli_options.output_file)] = None,
) -> None:
    """Run the evaluator: alerts and confirmed outcomes in, detection-quality metrics out."""
    from bankguard.stream_agents.evaluator.metrics import EvaluatorState, serve_metrics
    from bankguard.stream_agents.evaluator.process import run_evaluator, write_report

    settings = _settings(evaluator__metrics_port=metrics_port)
    stop = _stop_flag()
    state = EvaluatorState()
    port = settings.evaluator.metrics_port
    try:
        serve_metrics(state, settings.evaluator, settings.investigations.capacity_per_day, port,
                      settings.evaluator.metrics_bind)
    except OSError as exc:
        raise BankguardError(f"cannot serve the evaluator's metrics on port {port}: {exc.strerror}") from None
    evaluator = run_evaluator(settings, state, should_stop=stop.is_set, on_ready=lambda: console.print(
        f"evaluator: metrics on http://127.0.0.1:{port}/metrics; Ctrl-C stops it"))
    if report is not None:
        console.print(f"figures written to {write_report(evaluator, report)}")


@ingest_app.command("statements")
def ingest_statements(
    file: Annotated[Path, typer.Argument(help="Statement CSV (txId, datetime, txAmount, txDirection, txSummary, txCounterparty).")],
    account: Annotated[str | None, typer.Option(help="Account id when the file has no account column (default: file name).")] = None,
    currency: Annotated[str, typer.Option(help="ISO 4217 currency of the amounts.", callback=cli_options.currency)] = "CNY",
    timezone: Annotated[str, typer.Option(help=TIMEZONE_HELP, callback=cli_options.time_zone)] = "Asia/Shanghai",
    encoding: Annotated[str, typer.Option(help=ENCODING_HELP, callback=cli_options.encoding)] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Publish a bank statement as aml_kyc events; bad rows are reported, good rows still go."""
    from bankguard.producers.statement_ingest import ingest_statement

    result = ingest_statement(_settings(), file, account=account, currency=currency, timezone=timezone,
                              encoding=encoding)
    if as_json:
        typer.echo(json.dumps({
            "topic": result.topic, "published": result.published, "failed": result.failed,
            "rejected": [{"line": r.line, "reason": r.reason} for r in result.rejected],
        }, ensure_ascii=False, indent=2))
    else:
        for row in result.rejected:
            console.print(f"line {row.line}: rejected: {row.reason}", markup=False)
        console.print(f"published {result.published} event(s) to {result.topic}, "
                      f"rejected {len(result.rejected)} row(s)")
    if result.failed:
        raise typer.Exit(1)


@statements_app.command("scan")
def statements_scan(
    file: Annotated[Path, typer.Argument(help="Statement CSV (txId, datetime, txAmount, txDirection, txSummary, txCounterparty).")],
    config: Annotated[Path | None, typer.Option(help="Rules YAML (default: the built-in configuration).")] = None,
    account: Annotated[str | None, typer.Option(help="Account id when the file has no account column (default: file name).")] = None,
    timezone: Annotated[str, typer.Option(help=TIMEZONE_HELP, callback=cli_options.time_zone)] = "Asia/Shanghai",
    encoding: Annotated[str, typer.Option(help=ENCODING_HELP, callback=cli_options.encoding)] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print anomalies, rejected rows and a summary as JSON.")] = False,
) -> None:
    """Find the anomalies in a statement with the stream's rules (large amount, keywords, context)."""
    from bankguard.rules.config import load_rules
    from bankguard.statement_scan import scan_statement
    from bankguard.statement_report import print_rejection_summary, print_scan

    result = scan_statement(file, load_rules(config), account=account, timezone=timezone, encoding=encoding)
    if as_json:
        typer.echo(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
    else:
        print_scan(result)
    print_rejection_summary(result, console)


@rules_app.command("check")
def rules_check(file: Annotated[Path, typer.Argument(help="Rules YAML.")]) -> None:
    """Validate a rules configuration (no scenario left silent by accident) and print its version."""
    from bankguard.rules.publish import check_rules

    console.print(f"{file}: valid, version {check_rules(file).version}")


@rules_app.command("publish")
def rules_publish(file: Annotated[Path, typer.Argument(help="Rules YAML.")]) -> None:
    """Check, sign and publish a rules configuration; running workers switch without a restart."""
    from bankguard.rules.publish import publish_rules

    version, key = publish_rules(_settings(), file)
    console.print(f"published rules version {version}, signed with key {key}")


@rules_app.command("keygen")
def rules_keygen(
    out: Annotated[Path, typer.Option(help="Directory for NAME.pem (private) and NAME.pub.", callback=cli_options.output_dir)] = Path("."),
    name: Annotated[str, typer.Option(help="Key holder; workers name the signer after the .pub file.")] = "rules-signing",
) -> None:
    """Create an Ed25519 key pair for signing rules configurations."""
    from bankguard.rules.signing import generate_key_pair, key_id, load_public_key

    private, public = generate_key_pair(out, name)
    console.print(f"key {key_id(load_public_key(public))}: sign with {private} "
                  f"(BANKGUARD_RULES__SIGNING_KEY), trust {public} (BANKGUARD_RULES__TRUSTED_KEYS)")


@app.command()
def worker(
    web_port: Annotated[int | None, typer.Option(help="Web/metrics port (one per worker).", min=1, max=65535)] = None,
    loglevel: Annotated[str, typer.Option(help="Faust log level.", callback=cli_options.log_level)] = "warning",
) -> None:
    """Run a Faust scoring worker (serves /metrics on its web port)."""
    from bankguard.stream_agents.worker import run_worker

    run_worker(_settings(worker__web_port=web_port), loglevel=loglevel)


@app.command()
def up(
    duration: Annotated[float | None, typer.Option(help="Run headless this many seconds, then drain and stop.", min=1, callback=cli_options.finite)] = None,
    summary: Annotated[Path | None, typer.Option(help="Write the run summary JSON here (with --duration).", dir_okay=False, callback=cli_options.output_file)] = None,
    rate: Annotated[float, typer.Option(help="Events per second, all scenarios together.", min=0.001, callback=cli_options.finite)] = 450.0,
    workers: Annotated[int, typer.Option(help="Number of worker processes.", min=1, max=8)] = 1,
    seed: Annotated[int | None, typer.Option(help="Producer seed.")] = None,
) -> None:
    """Start the whole embedded stack: broker, topics, producers, workers, Prometheus, Alertmanager."""
    from bankguard.stack import Stack

    if summary is not None and duration is None:
        raise BankguardError("--summary needs --duration (the summary is written when the run ends)")
    settings = _settings()
    check_run_dir(settings.run_dir)
    Stack(settings, rate=rate, workers=workers, seed=seed).run(duration_s=duration, summary_path=summary)


@schemas_app.command("export")
def schemas_export(
    directory: Annotated[Path, typer.Argument(help="Where to write <scenario>.v1.json.", file_okay=False, callback=cli_options.output_dir)] = Path(__file__).parent / "schemas",
) -> None:
    """Write the JSON Schema of every scenario event (the committed contract)."""
    from bankguard.schema_files import write_schemas

    for path in write_schemas(directory):
        console.print(str(path))


def check_run_dir(path: Path) -> Path:
    """The run directory (logs, configs, keys), created if missing; one line if unusable."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BankguardError(f"run directory {path} (BANKGUARD_RUN_DIR) cannot be created: {exc.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise BankguardError(f"run directory {path} (BANKGUARD_RUN_DIR) is not writable")
    return path


def main() -> None:
    """Entry point: run the CLI; user errors are one line and exit code 2 or 1 (:mod:`bankguard.cli_errors`)."""
    run(app)
