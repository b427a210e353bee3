"""``video2gs train``: train and fine-tune L4GM, LGM and the interpolation model (``docs/l4gm.md`` §6).

* :mod:`~video2gs.train.config` -- TOML presets (``presets/*.toml``) and ``--set KEY=VALUE`` overrides.
* :mod:`~video2gs.train.data` -- ``--data`` folders -> stores -> seeded samples -> per-process batches.
* :mod:`~video2gs.train.loss` -- render the predicted Gaussians, MSE(rgb) + MSE(alpha) + LPIPS-VGG.
* :mod:`~video2gs.train.trainer` -- the accelerate loop (accumulation, precision, clip, AdamW, OneCycle).
* :mod:`~video2gs.train.validate` -- validation with the metrics of ``video2gs evaluate``.
* :mod:`~video2gs.train.state` -- checkpoints (official-layout weights, optimiser/RNG state, metadata).
* :mod:`~video2gs.train.logs` -- ``metrics.jsonl``, TensorBoard, grid PNGs.
"""
