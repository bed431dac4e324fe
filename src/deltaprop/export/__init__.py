"""Export to where models are deployed: ONNX graphs and PyTorch modules.

Modules: ``equivalents`` (each activation's ONNX operator and PyTorch module, in one table),
``onnx`` (a network as an ONNX model), ``torch`` (a network as a ``torch.nn.Sequential``, its
state dict as safetensors, and back). ``onnx`` and ``torch`` are optional extras
(``pip install 'deltaprop[onnx]'``, ``'deltaprop[torch]'``), imported only when an export
runs, so ``import deltaprop`` never loads them.

This layer reads a network through :meth:`FeedForward.layer_specs` and its public attributes
only; :class:`deltaprop.Network` (one layer up) offers ``to_onnx``, ``to_torch`` and
``from_torch`` on top of it.
"""
