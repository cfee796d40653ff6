"""No scenario goes unwatched by accident: a configuration that leaves a scenario without
any active rule needs that scenario listed in ``allow_silent_scenarios``.

``rules check``, ``rules publish`` and the workers apply the same check, so a configuration
that switches every detector off (by mistake, or by someone who may write to the control
topic) is refused; an intended one says so in a field its publisher signs. Models are not
configured here: a silent scenario is left to the models alone, which can be off.
"""

from __future__ import annotations

from bankguard.errors import BankguardError
from bankguard.rules.config import RulesConfig
from bankguard.rules.engine import active_rules
from bankguard.scenarios import SCENARIOS


class SilentScenarios(BankguardError):
    """A configuration leaves scenarios without a rule and does not allow it."""


def silent_scenarios(config: RulesConfig) -> list[str]:
    """Scenarios on which no rule of ``config`` runs."""
    return [scenario for scenario in SCENARIOS if not active_rules(scenario, config)]


def require_coverage(config: RulesConfig, *, source: str = "rules") -> None:
    """Raise unless every scenario left without a rule is explicitly allowed to be."""
    unknown = sorted(set(config.allow_silent_scenarios) - set(SCENARIOS))
    if unknown:
        raise BankguardError(f"{source}: allow_silent_scenarios: unknown scenario(s) {', '.join(unknown)}")
    silent = [s for s in silent_scenarios(config) if s not in config.allow_silent_scenarios]
    if silent:
        raise SilentScenarios(f"{source}: no active rule for {', '.join(silent)}; list them in "
                             f"allow_silent_scenarios to switch their rules off on purpose")
