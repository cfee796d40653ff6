"""One module per dashboard; each exposes ``UID`` and ``dashboard()`` returning an SDK builder."""

from __future__ import annotations

from collections.abc import Callable

from grafana_foundation_sdk.builders.dashboard import Dashboard

from . import drilldown, models, overview, pipeline, quality, rules

#: Every dashboard, in the order they are listed and written.
BOARDS: dict[str, Callable[[], Dashboard]] = {
    module.UID: module.dashboard for module in (overview, drilldown, rules, models, quality, pipeline)
}
