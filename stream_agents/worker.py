"""Run the Faust worker in this process until SIGINT/SIGTERM."""

from __future__ import annotations

import gc

import faust

from bankguard.errors import BankguardError
from bankguard.broker import port_is_free
from bankguard.kafka import bankguard_topics, ensure_topics
from bankguard.settings import Settings
from bankguard.rules.config import load_rules
from bankguard.stream_agents.app import create_app
from bankguard.stream_agents.faust_seam import check_versions
from bankguard.stream_agents.rules_control import RulesWatcher
from bankguard.topics import Topics


def run_worker(settings: Settings, *, loglevel: str = "warning") -> None:
    """Check the Faust and aiokafka versions and the web port, make sure the topics exist, then
    hand over to Faust."""
    check_versions()  # the overrides in faust_seam mirror exactly these versions
    port = settings.worker.web_port
    if not port_is_free("127.0.0.1", port):
        raise BankguardError(
            f"worker web port {port} is busy; give each worker its own with --web-port"
        )
    ensure_topics(settings, bankguard_topics(settings))
    settings.worker.data_dir.mkdir(parents=True, exist_ok=True)
    rules = load_rules(settings.rules_path)
    watcher = RulesWatcher(settings, Topics(settings.topics.prefix).rules_control, rules).start()
    app = create_app(settings, watcher)
    # Everything loaded so far (libraries, models) lives as long as the worker: keep it out of
    # the garbage collector's full passes, which otherwise pause the stream for ~75 ms.
    gc.freeze()
    # The entity states are many small, long-lived containers: at the default threshold the
    # young generation is collected every 700 allocations, ~5 us per scored event.
    gc.set_threshold(20_000, 10, 10)
    faust.Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()
