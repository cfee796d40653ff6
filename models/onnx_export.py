"""Model files in ONNX: safe to load (no pickle), fast to run (onnxruntime, microseconds).

Every exported model takes ``input`` (float32, n x columns) and, for the LSTM, also
``seq`` (float32, n x SEQ_LEN x width), and gives the fraud probability of each row.
:func:`probabilities` reads either layout, so scoring never needs to know which
library trained a model.

skl2onnx 1.20 cannot convert a scikit-learn 1.9 HistGradientBoosting model: it hands
numpy booleans (``missing_go_to_left``) to an ONNX integer attribute. We convert with
that one attribute cast to ``int`` (a scoped patch), and the trainer checks every
exported model against the native one before it is kept.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import onnxruntime as ort

OPSET = 17


@contextlib.contextmanager
def _hist_gbdt_patch() -> Iterator[None]:
    import skl2onnx.common.tree_ensemble as tree_ensemble

    original = tree_ensemble.add_node

    def add_node(*args: Any, **kwargs: Any) -> Any:
        if "nodes_missing_value_tracks_true" in kwargs:
            kwargs["nodes_missing_value_tracks_true"] = int(kwargs["nodes_missing_value_tracks_true"])
        return original(*args, **kwargs)

    tree_ensemble.add_node = add_node
    try:
        yield
    finally:
        tree_ensemble.add_node = original


def sklearn_to_onnx(model: Any, n_features: int) -> bytes:
    """A fitted scikit-learn classifier (a Pipeline with its scaler) as ONNX bytes."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    with _hist_gbdt_patch(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        proto = to_onnx(model, initial_types=[("input", FloatTensorType([None, n_features]))],
                        options={"zipmap": False}, target_opset=OPSET)
    proto.doc_string = "bankguard model"
    return proto.SerializeToString()


def torch_to_onnx(module: Any, seq_example: np.ndarray, x_example: np.ndarray) -> bytes:
    """The LSTM (inputs ``seq`` and ``input``, output ``probability``) as ONNX bytes."""
    import torch

    buffer = io.BytesIO()
    module.eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, (torch.from_numpy(seq_example), torch.from_numpy(x_example)),
            buffer,  # type: ignore[arg-type]  # torch takes a file object, though annotated for paths
            input_names=["seq", "input"], output_names=["probability"],
            dynamic_axes={"seq": {0: "n"}, "input": {0: "n"}, "probability": {0: "n"}},
            opset_version=OPSET, dynamo=False,
        )
    return buffer.getvalue()


CHUNK_ROWS = 1_024


def session(model_bytes: bytes, threads: int = 1) -> ort.InferenceSession:
    """An onnxruntime session pinned to ``threads`` (the stream runs one per worker core)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model_bytes, sess_options=options, providers=["CPUExecutionProvider"])


def probabilities(sess: ort.InferenceSession, X: np.ndarray, seq: np.ndarray | None = None) -> np.ndarray:
    """P(fraud) per row, from either a scikit-learn export or the LSTM export.

    Large inputs run in chunks of ``CHUNK_ROWS``: the LSTM's per-row cost grows about
    fourfold on a 100k-row batch (its working set leaves the cache), trees do not care.
    """
    names = {i.name for i in sess.get_inputs()}
    if "seq" in names and seq is None:
        raise ValueError("this model reads sequences; none were given")
    if len(X) > CHUNK_ROWS:
        return np.concatenate([
            probabilities(sess, X[i:i + CHUNK_ROWS], None if seq is None else seq[i:i + CHUNK_ROWS])
            for i in range(0, len(X), CHUNK_ROWS)])
    feeds = {"input": np.ascontiguousarray(X, dtype=np.float32)}
    if "seq" in names:
        feeds["seq"] = np.ascontiguousarray(seq, dtype=np.float32)
    outputs = sess.get_outputs()
    if outputs[0].name == "probability":
        return sess.run(["probability"], feeds)[0].astype(np.float64).reshape(-1)
    probs = sess.run(["probabilities"], feeds)[0]
    return probs[:, 1].astype(np.float64)
