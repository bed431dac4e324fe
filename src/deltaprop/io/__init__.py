"""File formats: model files and checkpoint files, both safetensors with a JSON document.

- :mod:`~deltaprop.io.tensorfile`: what both formats share: the one safetensors reader (every
  size checked before anything is allocated, strict JSON), the network's tensors and config,
  the random generator's state.
- :mod:`~deltaprop.io.atomic`: the one writer: a file whole or not at all.
- :mod:`~deltaprop.io.digest`: the digest that seals every file written, verified on reading.
- :mod:`~deltaprop.io.model_file`: ``save``, ``load``, ``read_info``.
- :mod:`~deltaprop.io.checkpoint_file`: ``save_checkpoint``, ``load_checkpoint``,
  ``TrainingState``.

Reading never executes anything from a file; writing is atomic. Imports :mod:`deltaprop.core`
and :mod:`deltaprop.optim` (a checkpoint holds an optimizer's state); safetensors loads with
the first file read or written, so ``import deltaprop`` does not load it.
"""
