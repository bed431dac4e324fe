"""The public Network: the core maths with training, model files and the notebook view.

As Keras composes ``Model`` from ``Layer`` and ``Trainer``, :class:`Network` composes the
feed-forward maths (:class:`deltaprop.core.network.FeedForward`, which knows nothing of
training or files) with :func:`deltaprop.train.fit` and :mod:`deltaprop.io.model_file`. It sits
above every layer it composes, so none of them imports it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from deltaprop.core.network import FeedForward
from deltaprop.export import onnx as onnx_export
from deltaprop.export import torch as torch_export
from deltaprop.io import model_file
from deltaprop.train.callbacks import History
from deltaprop.train.loop import fit

if TYPE_CHECKING:
    import onnx
    import torch


class Network(FeedForward):
    __doc__ = FeedForward.__doc__

    def fit(self, X: object, T: object = None, **kwargs: object) -> History:
        """Train by backpropagation; see :func:`deltaprop.fit` for the options."""
        return fit(self, X, T, **kwargs)

    def save(self, path: str | os.PathLike, metadata: dict | None = None) -> None:
        """Write the network to exactly ``path``, atomically (see :func:`deltaprop.save`)."""
        model_file.save(self, path, metadata=metadata)

    # ------------------------------------------------------------ export (deltaprop.export)
    def to_onnx(
        self,
        path: str | os.PathLike | None = None,
        *,
        opset: int | None = None,
        dtype: object = None,
    ) -> onnx.ModelProto:
        """The network as an ONNX model (input ``input`` [N, n_in], output ``output``
        [N, n_out]); written atomically to ``path`` when given, and returned either way.

        ``opset`` defaults to the pinned opset 17 (13 at the least); ``dtype`` (float32 or
        float64) defaults to the network's. The architecture, class names and metadata are
        the model's metadata properties. Needs ``pip install 'deltaprop[onnx]'``.
        """
        return onnx_export.network_to_onnx(self, path, opset=opset, dtype=dtype)

    def to_torch(self) -> torch.nn.Sequential:
        """A ``torch.nn.Sequential`` (Linear, activation, Linear, ...; ``nn.Identity`` for
        identity) with the same outputs, in the network's dtype, holding copies of the weights.
        Needs PyTorch (``pip install 'deltaprop[torch]'``)."""
        return torch_export.to_torch(self)

    @classmethod
    def from_torch(cls, module: torch.nn.Sequential, *, loss: str) -> Network:
        """A Network with the layers and weights (copied) of a ``torch.nn.Sequential`` of
        ``Linear`` modules, each followed by a supported activation or by none (identity).
        ``loss`` is the loss to train it with further (a module does not say); the dtype is the
        module's. ValueError names the first module that does not fit."""
        found = torch_export.layers_from_torch(module)
        net = cls(
            found.sizes,
            activation=found.activations[:-1],
            output_activation=found.activations[-1],
            loss=loss,
            dtype=found.dtype,
        )
        for layer, (W, b) in zip(net.layers, found.parameters):
            layer.W, layer.b = W, b
        return net

    def _repr_html_(self) -> str:
        """Jupyter's view: a summary of the layers and the network's diagram."""
        # Imported here for matplotlib's sake: a notebook asks, a script never pays for it.
        from deltaprop.plot.diagram import summary_html

        return summary_html(self)


def load(path: str | os.PathLike) -> Network:
    """The network saved at ``path`` (see :func:`deltaprop.io.model_file.load`)."""
    return model_file.load(path, into=Network)


save = model_file.save
