"""Keyword lists over memo and counterparty: one hit per event naming every list matched."""

from __future__ import annotations

import re

import numpy as np

from bankguard.features.spec import Feature
from bankguard.rules.base import Batch, Hit, register
from bankguard.rules.config import SCORES, SEVERITY_RANK, KeywordList, RulesConfig
from bankguard.rules.keywords import find_keywords, matcher


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
        # Memos and counterparties repeat a lot (salaries, rent, the same payees): match each
        # distinct text once, with one regex over every list's words first, then look rows up.
        anywhere = matcher(tuple(word for kw in lists for word in kw.words))
        if anywhere is None:
            return []
        memo_codes, memo_found = _found_per_text(batch, "memo", lists, anywhere)
        cp_codes, cp_found = _found_per_text(batch, "counterparty", lists, anywhere)
        memo_hit = np.array([bool(found) for found in memo_found] + [False])  # code -1 reads the last
        cp_hit = np.array([bool(found) for found in cp_found] + [False])
        hits = []
        for row in np.flatnonzero(memo_hit[memo_codes] | cp_hit[cp_codes]).tolist():
            in_memo = memo_found[memo_codes[row]] if memo_codes[row] >= 0 else {}
            in_counterparty = cp_found[cp_codes[row]] if cp_codes[row] >= 0 else {}
            matched = {kw.name: (kw, [w for w in kw.words if w in {*in_memo.get(kw.name, ()),
                                                                  *in_counterparty.get(kw.name, ())}])
                       for kw in lists if kw.name in in_memo or kw.name in in_counterparty}
            worst = max((kw.severity for kw, _ in matched.values()), key=SEVERITY_RANK.__getitem__)
            hits.append(Hit(
                row, self.id, self.version, worst, SCORES[worst],
                tuple(f"{name} keywords: {', '.join(words)}" for name, (_, words) in matched.items()),
                {"lists": {name: words for name, (_, words) in matched.items()},
                 "fields": [name for name, where in (("memo", in_memo), ("counterparty", in_counterparty)) if where]},
            ))
        return hits


def _found_per_text(batch: Batch, name: str, lists: tuple[KeywordList, ...],
                    anywhere: re.Pattern[str]) -> tuple[np.ndarray, list[dict[str, list[str]]]]:
    codes, texts = batch.factorized(name)
    return codes, [_lists_found(lists, text) if isinstance(text, str) and anywhere.search(text) else {}
                   for text in texts]


def _lists_found(lists: tuple[KeywordList, ...], text: str) -> dict[str, list[str]]:
    """For one text, the keywords of each list that it contains (lists without any left out)."""
    return {kw.name: found for kw in lists if (found := find_keywords(kw.words, text))}
