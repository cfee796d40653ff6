"""Where each CSV record starts and how many fields it has, vectorised over the bytes.

Statement readers need both to reject a ragged row by its line number and still parse the
rest in one fast pass: a parser either refuses the whole file or drops rows without saying
which. Quotes are honoured (a quoted comma or newline belongs to its field).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np

NEWLINE, QUOTE, COMMA, CR = 10, 34, 44, 13
_OPENERS = np.array([COMMA, NEWLINE, QUOTE, 32, 9], np.uint8)  # what may stand before an opening quote
_CLOSERS = np.array([COMMA, NEWLINE, CR, QUOTE, 32, 9], np.uint8)  # ... and after a closing one


@dataclass(frozen=True)
class Records:
    """One entry per record: byte ``start``/``end`` (end excludes the newline), the 1-based
    ``line`` it starts on, and its number of ``fields``; a blank record has 0 fields."""

    start: np.ndarray
    end: np.ndarray
    line: np.ndarray
    fields: np.ndarray

    def keep_bytes(self, data: bytes, keep: np.ndarray) -> bytes:
        """``data`` with only the records where ``keep`` holds (records are contiguous, so
        this is one byte mask), each ending in a newline."""
        buffer = np.frombuffer(data, np.uint8)
        if data and not data.endswith(b"\n"):
            buffer = np.append(buffer, np.uint8(NEWLINE))
        if keep.all():
            return buffer.tobytes() if len(buffer) != len(data) else data
        return buffer[np.repeat(keep, self.end - self.start + 1)].tobytes()


def split_records(data: bytes) -> Records:
    """The records of UTF-8 CSV bytes (``\\n`` or ``\\r\\n`` line ends)."""
    buffer = np.frombuffer(data, np.uint8)
    quotes = np.flatnonzero(buffer == QUOTE)
    if not _well_quoted(buffer, quotes):
        return _split_with_csv_module(data)
    newlines = np.flatnonzero(buffer == NEWLINE)
    commas = np.flatnonzero(buffer == COMMA)
    if len(quotes):  # a newline or comma after an odd number of quotes is inside a field
        newlines = newlines[np.searchsorted(quotes, newlines) % 2 == 0]
        commas = commas[np.searchsorted(quotes, commas) % 2 == 0]
    ends = newlines if data.endswith(b"\n") or not data else np.append(newlines, len(data))
    starts = np.concatenate([[0], newlines + 1])[: len(ends)]
    all_newlines = np.flatnonzero(buffer == NEWLINE)
    lines = np.searchsorted(all_newlines, starts) + 1
    fields = np.diff(np.searchsorted(commas, np.concatenate([[-1], ends]))) + 1
    body = ends - starts - (buffer[np.maximum(ends - 1, 0)] == CR) * (ends > starts)
    fields[body <= 0] = 0
    return Records(starts.astype(np.int64), ends.astype(np.int64), lines.astype(np.int64),
                   fields.astype(np.int64))


def _well_quoted(buffer: np.ndarray, quotes: np.ndarray) -> bool:
    """Every quote opens a field or closes one (RFC 4180), so counting them is exact."""
    if len(quotes) % 2:
        return False
    opening, closing = quotes[0::2], quotes[1::2]
    before = buffer[opening[opening > 0] - 1]
    after = buffer[closing[closing < len(buffer) - 1] + 1]
    return bool(np.isin(before, _OPENERS).all() and np.isin(after, _CLOSERS).all())


def _split_with_csv_module(data: bytes) -> Records:
    """The exact but slower path for loosely quoted files: Python's csv reader, record by record."""
    text = data.decode("utf-8")
    line_offsets = np.concatenate([[0], np.flatnonzero(np.frombuffer(data, np.uint8) == NEWLINE) + 1])
    reader = csv.reader(io.StringIO(text, newline=""))
    starts, ends, lines, fields = [], [], [], []
    previous = 0
    for record in reader:
        first, last = previous + 1, reader.line_num
        previous = last
        lines.append(first)
        fields.append(len(record) if record else 0)
        starts.append(int(line_offsets[first - 1]))
        ends.append(int(line_offsets[last]) - 1 if last < len(line_offsets) else len(data))
    return Records(np.array(starts, np.int64), np.array(ends, np.int64), np.array(lines, np.int64),
                   np.array(fields, np.int64))
