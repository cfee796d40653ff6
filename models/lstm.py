"""The sequence model: an LSTM over the entity's last events, joined with the event's row.

Why both inputs: the tabular features already summarise the windows (counts, sums,
"new device"); what they cannot express is order and rhythm inside a burst (three
failed logins, then a success, then a transfer; phishing, then malware, then a big
upload). The LSTM reads that from the sequence, two dense layers read the row (as deep as the
MLP, so the sequence model starts from what the per-event MLP knows), and a head
combines them. The row's standardisation is inside the module (buffers), so the
exported ONNX takes the same raw matrix as every other model.

Kept small and single-threaded on purpose: it trains in seconds per scenario on a
shared two-core machine, and runs in well under a millisecond per event.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from bankguard.models.lstm_config import LstmConfig


class SequenceNet(nn.Module):
    """P(fraud) from (sequence, feature row)."""

    mean: torch.Tensor  # buffers, registered below
    std: torch.Tensor

    def __init__(self, width: int, n_features: int, mean: np.ndarray, std: np.ndarray,
                 config: LstmConfig) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))
        self.lstm = nn.LSTM(width, config.hidden, batch_first=True)
        self.row = nn.Sequential(nn.Linear(n_features, config.row_hidden), nn.ReLU(),
                                 nn.Linear(config.row_hidden, config.dense), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(config.hidden + config.dense, config.dense), nn.ReLU(),
                                  nn.Linear(config.dense, 1))

    def logits(self, seq: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(seq)
        z = torch.cat([h[-1], self.row((x - self.mean) / self.std)], dim=1)
        return self.head(z).squeeze(1)

    def forward(self, seq: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(seq, x))


def train_lstm(seq: np.ndarray, X: np.ndarray, y: np.ndarray, seed: int, config: LstmConfig) -> SequenceNet:
    """Fit with class-weighted BCE (positives weighted by sqrt of the imbalance), Adam."""
    torch.manual_seed(seed)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        mean = X.mean(axis=0)
        std = X.std(axis=0)
        std[std < 1e-6] = 1.0
        model = SequenceNet(seq.shape[2], X.shape[1], mean, std, config)
        positives = max(int(y.sum()), 1)
        pos_weight = torch.tensor(float(np.sqrt((len(y) - positives) / positives)))
        loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
        optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
        seq_t, x_t = torch.from_numpy(np.ascontiguousarray(seq)), torch.from_numpy(np.ascontiguousarray(X))
        y_t = torch.from_numpy(y.astype(np.float32))
        rng = np.random.default_rng(seed)
        model.train()
        for _ in range(config.epochs):
            order = torch.from_numpy(rng.permutation(len(y)))
            for start in range(0, len(y), config.batch):
                rows = order[start:start + config.batch]
                optimiser.zero_grad()
                loss = loss_fn(model.logits(seq_t[rows], x_t[rows]), y_t[rows])
                loss.backward()
                optimiser.step()
        model.eval()
        return model
    finally:
        torch.set_num_threads(previous_threads)


def predict(model: SequenceNet, seq: np.ndarray, X: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(seq)), torch.from_numpy(np.ascontiguousarray(X))).numpy()
