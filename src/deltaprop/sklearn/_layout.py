"""The weights in scikit-learn's layout: ``coefs_`` and ``intercepts_`` as views of the
network's arrays."""

from __future__ import annotations

import numpy as np

from deltaprop.model import Network


class SklearnLayout:
    """``coefs_`` and ``intercepts_`` of the estimator's ``network_``."""

    def _fitted_network(self) -> Network:
        net = self.__dict__.get("network_")
        if net is None:
            raise AttributeError(f"This {type(self).__name__} is not fitted yet; call fit first.")
        return net

    @property
    def coefs_(self) -> list[np.ndarray]:
        """Weight matrices in scikit-learn's layout, (n_in, n_out): transposed *views* of
        ``network_.layers[i].W`` (deltaprop's (n_out, n_in)), so writing into them changes
        the network."""
        return [layer.W.T for layer in self._fitted_network().layers]

    @coefs_.setter
    def coefs_(self, values: list[np.ndarray]) -> None:
        self._assign("coefs_", values, [layer.W.T for layer in self._fitted_network().layers])

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """Bias vectors, ``network_.layers[i].b`` itself."""
        return [layer.b for layer in self._fitted_network().layers]

    @intercepts_.setter
    def intercepts_(self, values: list[np.ndarray]) -> None:
        self._assign("intercepts_", values, self.intercepts_)

    @staticmethod
    def _assign(name: str, values: list[np.ndarray], targets: list[np.ndarray]) -> None:
        arrays = [np.asarray(v) for v in values]
        shapes = [t.shape for t in targets]
        if [a.shape for a in arrays] != shapes:
            raise ValueError(
                f"{name} must be {len(shapes)} arrays of shapes {shapes}. "
                f"Received: shapes {[a.shape for a in arrays]}"
            )
        for target, value in zip(targets, arrays):
            target[...] = value
