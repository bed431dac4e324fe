"""The public Network: the core maths with training, model files and the notebook view.

As Keras composes ``Model`` from ``Layer`` and ``Trainer``, :class:`Network` composes the
feed-forward maths (:class:`deltaprop.core.network.FeedForward`, which knows nothing of
training or files) with :func:`deltaprop.train.fit` and :mod:`deltaprop.io.model_file`. It sits
above every layer it composes, so none of them imports it.
"""

from __future__ import annotations

import os

from deltaprop.core.network import FeedForward
from deltaprop.io import model_file
from deltaprop.train.callbacks import History
from deltaprop.train.loop import fit


class Network(FeedForward):
    __doc__ = FeedForward.__doc__

    def fit(self, X: object, T: object, **kwargs: object) -> History:
        """Train by backpropagation; see :func:`deltaprop.fit` for the options."""
        return fit(self, X, T, **kwargs)

    def save(self, path: str | os.PathLike, metadata: dict | None = None) -> None:
        """Write the network to exactly ``path``, atomically (see :func:`deltaprop.save`)."""
        model_file.save(self, path, metadata=metadata)

    def _repr_html_(self) -> str:
        """Jupyter's view: a summary of the layers and the network's diagram."""
        # Imported here for matplotlib's sake: a notebook asks, a script never pays for it.
        from deltaprop.plot.diagram import summary_html

        return summary_html(self)


def load(path: str | os.PathLike) -> Network:
    """The network saved at ``path`` (see :func:`deltaprop.io.model_file.load`)."""
    return model_file.load(path, into=Network)


save = model_file.save
