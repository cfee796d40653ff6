"""Keyword matching over memo and counterparty text.

Chinese keywords match as substrings (no word boundaries in the script); Latin ones
match whole words, case-insensitively, so "bet" does not fire on "alphabet".
"""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=64)
def matcher(words: tuple[str, ...]) -> re.Pattern[str] | None:
    """One compiled regex finding any of ``words``; ``None`` for an empty list."""
    if not words:
        return None
    parts = []
    for word in sorted(set(words), key=len, reverse=True):
        escaped = re.escape(word)
        parts.append(rf"(?<![A-Za-z0-9]){escaped}(?![A-Za-z0-9])" if word.isascii() else escaped)
    return re.compile("|".join(parts), re.IGNORECASE)


def find_keywords(words: tuple[str, ...], *texts: str | None) -> list[str]:
    """Keywords of ``words`` found in any of ``texts``, in list order, each once."""
    found: set[str] = set()
    for text in texts:
        if text:
            found.update(_found_in(words, text))
    return [word for word in words if word.lower() in found] if found else []


@lru_cache(maxsize=65_536)
def _found_in(words: tuple[str, ...], text: str) -> frozenset[str]:
    """Lower-cased keywords in one text; cached, as memos and counterparties repeat a lot."""
    pattern = matcher(words)
    if pattern is None:
        return frozenset()
    return frozenset(match.group(0).lower() for match in pattern.finditer(text))
