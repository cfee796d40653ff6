"""The model arena: six models per scenario, a sequence LSTM and a risk-ratio forecast.

Offline (``bankguard train``, :mod:`.build`): seeded generator traffic becomes
point-in-time features (:mod:`.features`, :mod:`.counterparty`, :mod:`.sequences`,
:mod:`.dataset`), six models are trained per scenario (:mod:`.train`, :mod:`.lstm`),
exported to ONNX (:mod:`.onnx_export`), compared on held-out days (:mod:`.arena`,
:mod:`.metrics`) and written with verified manifests (:mod:`.registry`); an LSTM per
scenario forecasts the high-risk ratio (:mod:`.forecast`).

Online (the stream worker): :class:`.scoring.ModelScorer` scores a batch with the
champion and shadow models; the worker keeps per entity the window features of
:func:`.features.window_features` (in its ``EntityState``) and a
:class:`.sequences.SequenceBuffer`. Importing the online modules loads onnxruntime,
not torch or scikit-learn.

Shipped artifacts live in ``models/artifacts`` (``bankguard train --quick --seed 7``).
"""
