"""The worker's web server serves ``/metrics`` and ``/health``, nothing else.

Faust mounts its own views by default: ``/router`` (which worker owns a table key: the
cluster's topology), ``/table`` (table contents: entity state), and statistics or a
status index at ``/``. None of them has authentication, and the worker needs none of
them (no ``@table_route``), so this web driver mounts no built-in blueprint at all
(the worker app builds it: see :class:`~bankguard.stream_agents.faust_seam.WorkerApp`).
"""

from __future__ import annotations

import faust
from faust.web.drivers.aiohttp import Web as AiohttpWeb


class MetricsOnlyWeb(AiohttpWeb):
    """Faust's aiohttp web server without any of Faust's built-in views."""

    default_blueprints = ()
    production_blueprints = ()
    debug_blueprints = ()
    optional_blueprints = ()


def add_health_page(app: faust.App) -> None:
    """``/health``: 200 while the worker runs, for container health checks and probes."""

    @app.page("/health")  # type: ignore[arg-type]  # faust types a page as a View method
    async def health(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
        return web.json({"status": "ok"})
