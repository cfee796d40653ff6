"""``bankguard replay``: a time range of topics into shadow topics, for a shadow worker."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from bankguard import cli_options


def replay(
    topics: Annotated[str, typer.Option(help="'all' (the nine scenario topics), scenario keys or topic names, comma-separated.")],
    from_: Annotated[str, typer.Option("--from", help="Start of the event-time range, included (ISO 8601; UTC unless an offset is given).")],
    to: Annotated[str, typer.Option("--to", help="End of the event-time range, excluded (ISO 8601).")],
    speed: Annotated[float, typer.Option(help="Event time per wall second (1 = real time, 60 = a minute per second, 0 = as fast as possible).", min=0, callback=cli_options.finite)] = 0.0,
    to_prefix: Annotated[str, typer.Option(help="Prepended to each topic name to name its shadow topic.")] = "shadow.",
    checkpoint: Annotated[Path | None, typer.Option(help="Progress file (default: one per parameter set under the run directory).", dir_okay=False, callback=cli_options.output_file)] = None,
    restart: Annotated[bool, typer.Option("--restart", help="Ignore a saved checkpoint and replay the whole range again.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress display.")] = True,
) -> None:
    """Replay a time range of topics into shadow topics, for a shadow worker to score the same traffic (resumable)."""
    from rich.progress import Progress, TextColumn, TimeElapsedColumn

    from bankguard.backtest.replay import Checkpoint, ReplayPlan, default_checkpoint_path, resolve_topics
    from bankguard.backtest.replay import replay as run_replay
    from bankguard.cli import _settings, _stop_flag, console
    from bankguard.topic_range import TimeRange, iso_ms, parse_time

    def say(text: str) -> None:
        console.print(text, markup=False, soft_wrap=True)  # one line, also in logs and pipes

    settings = _settings()
    window = TimeRange(parse_time(from_, "--from"), parse_time(to, "--to"))
    plan = ReplayPlan(tuple(resolve_topics(topics, settings.topics.prefix)), window, to_prefix)
    path = checkpoint or default_checkpoint_path(settings, plan)
    state = Checkpoint.open(path, plan, restart=restart)
    span = f"{iso_ms(window.start_ms)} to {iso_ms(window.end_ms)}"
    if state.complete:
        say(f"replay of {', '.join(plan.topics)} from {span} already complete ({state.replayed} records); "
            "--restart replays it again")
        return
    if state.offsets:
        say(f"resuming from checkpoint {path} ({state.replayed} records already replayed)")
    stop = _stop_flag()
    display = Progress(TextColumn("[bold]replaying"), TextColumn("{task.fields[count]:,} records"),
                       TextColumn("{task.fields[rate]:,.0f}/s"), TextColumn("event time {task.fields[event]}"),
                       TimeElapsedColumn(), console=console, disable=not (progress and sys.stderr.isatty()))
    task = display.add_task("replay", count=0, rate=0.0, event="-")
    with display:
        result = run_replay(settings, plan, state, speed=speed, should_stop=stop.is_set, on_progress=lambda r: display.update(
            task, count=r.replayed, rate=r.rate, event=iso_ms(r.event_ms) if r.event_ms is not None else "-"))
    targets = ", ".join(f"{topic} ({count})" for topic, count in sorted(result.counts.items()))
    line = f"replayed {result.replayed} records" + (f" to {targets}" if targets else "") + f", event time {span}"
    if result.failed:
        say(f"{line}; {result.failed} failed to publish (first: {result.first_error}); "
            f"rerun the same command to retry from checkpoint {path}")
        raise typer.Exit(1)
    if result.stopped:
        say(f"{line}; interrupted: rerun the same command to resume from checkpoint {path}")
        raise typer.Exit(130)
    say(line)
