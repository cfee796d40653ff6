"""The sequence model's hyperparameters, apart from :mod:`~bankguard.models.lstm` so that the
training profiles (and everything that reads them) load without importing torch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LstmConfig:
    hidden: int = 32
    dense: int = 32
    row_hidden: int = 64
    epochs: int = 8
    batch: int = 256
    lr: float = 5e-3
    threads: int = 1
