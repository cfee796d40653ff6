"""Keyword lists over memo and counterparty: one hit per event naming every list matched."""

from __future__ import annotations

from bankguard.features.spec import Feature
from bankguard.rules.base import Batch, Hit, register
from bankguard.rules.config import SEVERITY_RANK, RulesConfig
from bankguard.rules.keywords import find_keywords

SCORES = {"low": 0.3, "medium": 0.5, "high": 0.75, "critical": 0.9}


@register
class KeywordRule:
    id = "keywords"
    version = 1
    summary = "Memo or counterparty names a configured keyword (Chinese substring, English whole word)."

    def applies_to(self, scenario: str, config: RulesConfig) -> bool:
        return config.keywords.enabled and bool(config.keywords.lists)

    def features(self, config: RulesConfig) -> tuple[Feature, ...]:
        return ()

    def evaluate(self, batch: Batch, config: RulesConfig) -> list[Hit]:
        hits = []
        lists = config.keywords.lists
        memos, counterparties = batch.column("memo"), batch.column("counterparty")
        for row, (memo, counterparty) in enumerate(zip(memos.tolist(), counterparties.tolist())):
            if not memo and not counterparty:
                continue
            matched = {kw.name: (kw, found) for kw in lists
                       if (found := find_keywords(kw.words, memo, counterparty))}
            if not matched:
                continue
            worst = max((kw.severity for kw, _ in matched.values()), key=SEVERITY_RANK.__getitem__)
            hits.append(Hit(
                row, self.id, self.version, worst, SCORES[worst],
                tuple(f"{name} keywords: {', '.join(found)}" for name, (_, found) in matched.items()),
                {"lists": {name: found for name, (_, found) in matched.items()},
                 "fields": [name for name, text in (("memo", memo), ("counterparty", counterparty))
                            if text and any(find_keywords(kw.words, text) for kw, _ in matched.values())]},
            ))
        return hits
