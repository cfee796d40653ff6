"""Keyword lists over memo and counterparty: one hit per event naming every list matched."""

from __future__ import annotations

from bankguard.features.spec import Feature
from bankguard.rules.base import Batch, Hit, register
from bankguard.rules.config import SEVERITY_RANK, KeywordList, RulesConfig
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
        lists = config.keywords.lists
        memos, counterparties = batch.column("memo").tolist(), batch.column("counterparty").tolist()
        # Memos and counterparties repeat a lot (salaries, rent, the same payees): match each
        # distinct text once, then look rows up.
        found_in = {text: _lists_found(lists, text) for text in dict.fromkeys(memos + counterparties) if text}
        hits = []
        for row, (memo, counterparty) in enumerate(zip(memos, counterparties, strict=True)):
            in_memo, in_counterparty = found_in.get(memo) or {}, found_in.get(counterparty) or {}
            if not in_memo and not in_counterparty:
                continue
            matched = {kw.name: (kw, [w for w in kw.words if w in {*in_memo.get(kw.name, ()),
                                                                  *in_counterparty.get(kw.name, ())}])
                       for kw in lists if kw.name in in_memo or kw.name in in_counterparty}
            worst = max((kw.severity for kw, _ in matched.values()), key=SEVERITY_RANK.__getitem__)
            hits.append(Hit(
                row, self.id, self.version, worst, SCORES[worst],
                tuple(f"{name} keywords: {', '.join(found)}" for name, (_, found) in matched.items()),
                {"lists": {name: found for name, (_, found) in matched.items()},
                 "fields": [name for name, found in (("memo", in_memo), ("counterparty", in_counterparty)) if found]},
            ))
        return hits


def _lists_found(lists: list[KeywordList], text: str) -> dict[str, list[str]]:
    """For one text, the keywords of each list that it contains (lists without any left out)."""
    return {kw.name: found for kw in lists if (found := find_keywords(kw.words, text))}
