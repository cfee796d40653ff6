"""One generator per scenario; :func:`generator_class` finds it by scenario key.

The module is ``producers/scenarios/<key>.py``; the class is the one the scenario's unit
names (``Scenario.generator``), so the registry is the only list of scenarios.
"""

from __future__ import annotations

from importlib import import_module

from bankguard.producers.scenarios.base import ScenarioGenerator
from bankguard.scenarios import SCENARIOS


def generator_class(scenario: str) -> type[ScenarioGenerator]:
    """The generator of a scenario (module ``producers/scenarios/<scenario>.py``)."""
    module = import_module(f"bankguard.producers.scenarios.{scenario}")
    generator: type[ScenarioGenerator] = getattr(module, SCENARIOS[scenario].generator)
    return generator
