"""Keyword lists over memo and counterparty: one hit per event naming every list matched."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bankguard.features.spec import Feature
from bankguard.rules.base import Batch, Hit, register
from bankguard.rules.config import SEVERITY_RANK, KeywordList, RulesConfig
from bankguard.rules.keywords import find_keywords, matcher

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
        memos, counterparties = batch.column("memo"), batch.column("counterparty")
        # Memos and counterparties repeat a lot (salaries, rent, the same payees): match each
        # distinct text once, with one regex over every list's words first, then look rows up.
        codes, texts = pd.factorize(np.concatenate((memos, counterparties)), use_na_sentinel=True)
        anywhere = matcher(tuple(word for kw in lists for word in kw.words))
        if anywhere is None:
            return []
        found = [_lists_found(lists, text) if anywhere.search(text) else {} for text in texts.tolist()]
        hit_text = np.array([bool(f) for f in found] + [False])  # code -1 (no text) reads the last
        in_memo_code, in_cp_code = codes[: len(memos)], codes[len(memos):]
        hits = []
        for row in np.flatnonzero(hit_text[in_memo_code] | hit_text[in_cp_code]).tolist():
            in_memo = found[in_memo_code[row]] if in_memo_code[row] >= 0 else {}
            in_counterparty = found[in_cp_code[row]] if in_cp_code[row] >= 0 else {}
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


def _lists_found(lists: list[KeywordList], text: str) -> dict[str, list[str]]:
    """For one text, the keywords of each list that it contains (lists without any left out)."""
    return {kw.name: found for kw in lists if (found := find_keywords(kw.words, text))}
