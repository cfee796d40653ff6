"""Topic names, derived from one prefix so that several stacks can share a cluster."""

from __future__ import annotations

from dataclasses import dataclass

from bankguard.scenarios import SCENARIOS


@dataclass(frozen=True)
class Topics:
    """Every topic bankguard reads or writes."""

    prefix: str = "bankguard"

    def scenario(self, scenario: str) -> str:
        """Input events of one scenario, keyed by entity id."""
        return f"{self.prefix}.{SCENARIOS[scenario].topic}"

    @property
    def scenario_topics(self) -> dict[str, str]:
        return {key: self.scenario(key) for key in SCENARIOS}

    @property
    def truth(self) -> str:
        """Ground-truth labels; the scoring path never reads it."""
        return f"{self.prefix}.truth"

    @property
    def dlq(self) -> str:
        """Dead letters: original bytes, reason in headers."""
        return f"{self.prefix}.dlq"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}.alerts"

    @property
    def cases(self) -> str:
        """An entity's alerts of one window, grouped (``bankguard.cases``), keyed by case id."""
        return f"{self.prefix}.cases"

    @property
    def outcomes(self) -> str:
        """Confirmed dispositions (``bankguard.outcomes``): the only way a label reaches scoring."""
        return f"{self.prefix}.outcomes"

    @property
    def investigations_group(self) -> str:
        """Consumer group of the investigations desk."""
        return f"{self.prefix}-investigations"

    @property
    def rules_control(self) -> str:
        """Compacted control topic that carries the active rules configuration."""
        return f"{self.prefix}.control.rules"

    @property
    def rules_audit(self) -> str:
        """Every rules configuration a worker activated: version, signer, diff."""
        return f"{self.prefix}.audit.rules"

    @property
    def worker_group(self) -> str:
        """Consumer group (Faust app id) of the scoring workers."""
        return f"{self.prefix}-worker"

    @property
    def state_changelog(self) -> str:
        """Changelog of the workers' entity-state table (Faust's naming)."""
        return f"{self.worker_group}-entity-state-changelog"

    def named(self, spec: str) -> list[str]:
        """Topics of a comma-separated list of scenario keys (``credit_card``) or topic names."""
        return [self.scenario(name) if name in SCENARIOS else name
                for name in (part.strip() for part in spec.split(",")) if name]

    def scenario_of(self, topic: str) -> str:
        """Inverse of :meth:`scenario`; raises ``KeyError`` for a foreign topic."""
        for key in SCENARIOS:
            if topic == self.scenario(key):
                return key
        raise KeyError(topic)
