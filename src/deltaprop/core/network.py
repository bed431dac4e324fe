"""The feed-forward network: forwarding and backpropagation by the delta rule.

Length: one class holds a network's maths (forwarding, the deltas, the gradients with the
training controls' weights, dropout and penalty, the loss) and sparse inputs' first layer;
split, the delta rule and its gradient would lose their one home.

Notation (the seed's): unit j receives z_i from every unit i of the previous layer through the
weight w_ji, stored as ``layer.W[j, i]``; its net input is a_j = Σ_i w_ji z_i + b_j and its
activation z_j = h(a_j). The inputs are z^(0) = x; the outputs o are the last layer's z.

Backpropagation computes a delta for every unit, δ_j = -∂E/∂a_j:

    output unit k:  δ_k = -∂E/∂o_k · h'(a_k)   (sigmoid, squared error: o_k (1 - o_k)(t_k - o_k))
    hidden unit j:  δ_j = h'(a_j) Σ_k δ_k w_kj     (k runs over the layer after j)

and the gradient of the error, for one example, is ∂E/∂w_ji = -δ_j z_i, so gradient descent with
step η is the seed's update w_ji ← w_ji + η δ_j z_i. Over a batch, rows are examples: the deltas
of a layer form a matrix Δ (n, n_out), and ∂E/∂W = -Δᵀ Z_prev / n, the batch mean.

The inputs X may be a SciPy sparse matrix or array (CSR, as :meth:`FeedForward.check_inputs`
makes it): only the first layer reads X, in two products, X Wᵀ forward and (Xᵀ Δ)ᵀ for ∂E/∂W,
which SciPy computes on the sparse matrix itself; X is never made dense.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from deltaprop.core.activations import Activation, get_activation
from deltaprop.core.init import Initializer, get_initializer
from deltaprop.core.losses import Loss, accuracy_of, get_loss, prepare_targets
from deltaprop.core.regularization import (
    add_penalty_gradient,
    check_dropout,
    check_penalty,
    check_penalty_scale,
    check_sample_weight,
    draw_masks,
    example_scale,
    penalty_factor,
    penalty_value,
    weighted_mean,
)
from deltaprop.core.validation import check_inputs

Array = np.ndarray


@dataclass
class Layer:
    """A fully connected layer: ``W`` (n_out, n_in), ``b`` (n_out,), activation h."""

    W: Array
    b: Array
    activation: Activation

    @property
    def n_in(self) -> int:
        return self.W.shape[1]

    @property
    def n_out(self) -> int:
        return self.W.shape[0]

    def __repr__(self) -> str:
        return f"Layer({self.n_in} -> {self.n_out}, {self.activation.name})"


class LayerSpec(NamedTuple):
    """One layer as an exporter rebuilds it: ``W`` (n_out, n_in) and ``b`` (the layer's own
    arrays, not copies), then h by name with its fixed ``constants`` (see Activation)."""

    n_in: int
    n_out: int
    activation: str
    constants: dict[str, float]
    W: Array
    b: Array


class ForwardPass(NamedTuple):
    """Everything forwarding computed: ``a[l]`` net inputs of layer l, ``z[l + 1]`` its outputs.

    ``z[0]`` is the input batch, so layer l maps z[l] to z[l + 1]. Under dropout, ``masks[l]``
    is hidden layer l's scaled mask m_j / (1 − p) (None for a layer without dropout),
    ``z[l + 1]`` the outputs it passes on, z̃ = z · m / (1 − p), and ``undropped[l]`` its
    outputs h(a) before the mask, which h'(a) is written through; both are None without.
    """

    a: list[Array]
    z: list[Array]
    masks: list[Array | None] | None = None
    undropped: list[Array] | None = None

    @property
    def output(self) -> Array:
        return self.z[-1]


def is_sparse(X: object) -> bool:
    """Whether X is a SciPy sparse matrix or array. SciPy is not imported for the question: X
    cannot be one unless someone has imported scipy.sparse already."""
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and bool(sparse.issparse(X))


def check_sparse_inputs(X: Any, n_features: int, dtype: np.dtype, name: str = "X") -> Any:
    """A sparse X as CSR of ``dtype`` with ``n_features`` columns (the rows of CSR are what
    batches slice), or ValueError as :func:`deltaprop.core.validation.check_inputs` words it."""
    shape = X.shape
    if len(shape) != 2:
        raise ValueError(f"{name} must be 2-D, (n_examples, {n_features}). Received: shape {shape}")
    if shape[0] == 0:
        raise ValueError(f"{name} is empty (0 rows); expected at least one example")
    if shape[1] != n_features:
        raise ValueError(
            f"{name} has {shape[1]} columns but the network has {n_features} inputs. "
            f"Expected shape (n_examples, {n_features}). Received: shape {shape}"
        )
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers; received a sparse {X.dtype} matrix")
    csr = X.tocsr().astype(dtype, copy=False)
    if not np.isfinite(csr.data).all():
        raise ValueError(f"{name} (sparse) contains NaN or inf; expected finite numbers")
    return csr


def _dtype_of(dtype: object) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64. Received: dtype={dtype!r}")
    return dt


class FeedForward:
    """A feed-forward network's maths: forwarding, backpropagation, gradients and the loss.

    It knows nothing of training loops or files; :class:`deltaprop.Network` adds ``fit``,
    ``save`` and the notebook view on top of it (as Keras composes Model from Layer and
    Trainer). Everything below, and the engines, take any FeedForward.

    >>> import numpy as np, deltaprop as dp
    >>> net = dp.Network([2, 2, 1], activation="sigmoid", loss="mse", seed=0)
    >>> net.predict(np.array([[0.0, 1.0]])).shape
    (1, 1)

    Parameters
    ----------
    sizes: units per layer, inputs first: ``[64, 32, 10]`` is 64 inputs, 32 hidden, 10 outputs.
    activation: the hidden layers' activation, or a list with one name per hidden layer.
    output_activation: the output layer's; defaults to ``activation`` (its last entry if a list).
    loss: "mse", "cross_entropy" (softmax outputs) or "binary_cross_entropy" (sigmoid outputs).
    init: an initialiser name from :mod:`deltaprop.core.init`, or ``{"name": ..., "scale": ...}``.
    seed: seeds the network's own random generator, which draws the initial weights and later
        shuffles the training data and draws dropout masks; the global NumPy random state is
        never used.
    dtype: float64 (default) or float32; the whole computation stays in this type.
    dropout: a rate p in [0, 1), or a list with one per hidden layer: inverted dropout while
        training (see :mod:`deltaprop.core.regularization`); prediction never drops.
    l2, l1: penalties on the weights (never the biases), a number for every layer or a list
        with one per layer: P = Σ_l [l2_l / 2 · Σ w² + l1_l · Σ |w|], part of the loss.
    penalty_scale: "mean" (P added to each batch's mean loss, as Keras) or "sum" (P added to
        the batch's summed loss before dividing by its weight, scikit-learn's alpha).
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str | Sequence[str] = "sigmoid",
        output_activation: str | None = None,
        loss: str | Loss = "mse",
        init: str | dict | Initializer = "xavier",
        seed: int | None = None,
        dtype: object = np.float64,
        dropout: float | Sequence[float] = 0.0,
        l2: float | Sequence[float] = 0.0,
        l1: float | Sequence[float] = 0.0,
        penalty_scale: str = "mean",
    ) -> None:
        sizes = self._check_sizes(sizes)
        n_hidden = len(sizes) - 2
        if isinstance(activation, str) or isinstance(activation, Activation):
            hidden = [get_activation(activation)] * n_hidden
            default_output = activation
        else:
            names = list(activation)
            if len(names) != n_hidden:
                raise ValueError(
                    f"activation lists one name per hidden layer: {n_hidden} for sizes "
                    f"{sizes}. Received: {len(names)} names {names!r}"
                )
            hidden = [get_activation(name) for name in names]
            default_output = names[-1] if names else "sigmoid"
        output = get_activation(
            output_activation if output_activation is not None else default_output
        )
        for act in hidden:
            if not act.elementwise:
                raise ValueError(
                    f"{act.name} can only be the output activation; hidden layers need an "
                    f"element-wise activation. Received: activation={act.name!r}"
                )
        self.loss_function: Loss = get_loss(loss)
        self.loss_function.check_activation(output)
        self.initializer: Initializer = get_initializer(init)
        if seed is not None and (
            isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0
        ):
            raise ValueError(
                f"seed must be a non-negative integer or None. Received: seed={seed!r}"
            )
        self.dtype: np.dtype = _dtype_of(dtype)
        self.dropout: tuple[float, ...] = check_dropout(dropout, n_hidden)
        self.l2: tuple[float, ...] = check_penalty(l2, len(sizes) - 1, "l2")
        self.l1: tuple[float, ...] = check_penalty(l1, len(sizes) - 1, "l1")
        self.penalty_scale: str = check_penalty_scale(penalty_scale)
        self.seed = seed
        self.rng = np.random.default_rng(seed)

        # Anything worth keeping with the weights (class names, scaling, training summary);
        # saved in model files as JSON.
        self.metadata: dict = {}
        self.layers: list[Layer] = []
        for n_in, n_out, act in zip(sizes[:-1], sizes[1:], [*hidden, output]):
            W, b = self.initializer(n_in, n_out, self.rng, self.dtype)
            self.layers.append(Layer(W, b, act))

    @staticmethod
    def _check_sizes(sizes: object) -> list[int]:
        try:
            values = list(sizes)  # type: ignore[call-overload]
        except TypeError:
            raise ValueError(
                f"sizes must be a list of layer widths such as [2, 2, 1]. Received: sizes={sizes!r}"
            ) from None
        if len(values) < 2 or not all(
            isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1 for n in values
        ):
            raise ValueError(
                "sizes must list at least 2 positive integers (inputs, ..., outputs). "
                f"Received: sizes={sizes!r}"
            )
        return [int(n) for n in values]

    # ---------------------------------------------------------------- structure
    @property
    def sizes(self) -> list[int]:
        return [self.layers[0].n_in] + [layer.n_out for layer in self.layers]

    @property
    def n_inputs(self) -> int:
        return self.layers[0].n_in

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].n_out

    @property
    def n_parameters(self) -> int:
        return sum(layer.W.size + layer.b.size for layer in self.layers)

    def layer_specs(self) -> list[LayerSpec]:
        """The layers, inputs first, as plain descriptions: what an export (ONNX, PyTorch)
        reads, so that it needs nothing else of the network."""
        return [
            LayerSpec(
                ly.n_in, ly.n_out, ly.activation.name, dict(ly.activation.constants), ly.W, ly.b
            )
            for ly in self.layers
        ]

    def parameters(self) -> list[Array]:
        """[W_0, b_0, W_1, b_1, ...]: the arrays an optimizer updates in place."""
        return [p for layer in self.layers for p in (layer.W, layer.b)]

    # The flat parameter vector: what a full-batch solver (scipy.optimize's L-BFGS) moves.
    # Its order is parameters()'s, each array row-major: W_0, b_0, W_1, b_1, ...
    def parameter_vector(self) -> Array:
        """A copy of every weight and bias in one 1-D array, in ``parameters()`` order."""
        return np.concatenate([p.reshape(-1) for p in self.parameters()])

    def set_parameter_vector(self, vector: object) -> None:
        """Write a vector laid out as :meth:`parameter_vector` into the layers, in place."""
        flat = np.asarray(vector)
        if flat.shape != (self.n_parameters,):
            raise ValueError(
                f"the parameter vector must have shape ({self.n_parameters},). "
                f"Received: shape {flat.shape}"
            )
        start = 0
        for p in self.parameters():
            p[...] = flat[start : start + p.size].reshape(p.shape)
            start += p.size

    def loss_and_gradient(self, vector: object, X: Array, T: Array) -> tuple[float, Array]:
        """E and ∂E/∂θ at the parameters ``vector`` (which are then the network's), for a
        solver that minimises over the flat vector, e.g.
        ``scipy.optimize.minimize(net.loss_and_gradient, net.parameter_vector(), args=(X, T),
        jac=True, method="L-BFGS-B")``. X and T must be checked already
        (:meth:`check_inputs`, :meth:`check_targets`)."""
        self.set_parameter_vector(vector)
        fp = self.forward(X)
        grads = self.gradients_from(fp, self.backward(fp, T))
        flat = np.concatenate([g.reshape(-1) for pair in grads for g in pair])
        return self.loss_of(fp, T), flat

    def config(self) -> dict:
        """The architecture as plain JSON-serialisable data (with dropout rates and penalties
        when the network has them)."""
        return {
            "sizes": self.sizes,
            "activations": [layer.activation.name for layer in self.layers],
            "loss": self.loss_function.name,
            "init": self.initializer.config(),
            "dtype": self.dtype.name,
            "seed": self.seed,
            **self.controls_config(),
        }

    def controls_config(self) -> dict:
        """Dropout and the penalty as config() records them: only those the network has, so
        that a network without them writes the files it wrote before they existed."""
        out: dict = {}
        if self.has_dropout:
            out["dropout"] = list(self.dropout)
        if self.has_penalty or self.penalty_scale != "mean":
            out.update(l2=list(self.l2), l1=list(self.l1), penalty_scale=self.penalty_scale)
        return out

    @classmethod
    def from_config(cls, config: dict) -> FeedForward:
        """A new network (freshly initialised) with the architecture ``config()`` described
        (a config written before dropout and penalties existed has neither)."""
        n_layers = len(config["sizes"]) - 1
        return cls(
            config["sizes"],
            activation=config["activations"][:-1],
            output_activation=config["activations"][-1],
            loss=config["loss"],
            init=config["init"],
            seed=config["seed"],
            dtype=config["dtype"],
            dropout=config.get("dropout", [0.0] * (n_layers - 1)),
            l2=config.get("l2", 0.0),
            l1=config.get("l1", 0.0),
            penalty_scale=config.get("penalty_scale", "mean"),
        )

    def copy(self) -> FeedForward:
        """An independent copy: same architecture, weights and random-generator state."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.layers = [Layer(ly.W.copy(), ly.b.copy(), ly.activation) for ly in self.layers]
        clone.rng = np.random.default_rng()
        clone.rng.bit_generator.state = self.rng.bit_generator.state
        return clone

    def __repr__(self) -> str:
        acts = [layer.activation.name for layer in self.layers]
        return (
            f"{type(self).__name__}(sizes={self.sizes}, activations={acts}, "
            f"loss={self.loss_function.name!r}, "
            f"dtype={self.dtype.name}, parameters={self.n_parameters})"
        )

    # ---------------------------------------------------------------- checks
    def check_inputs(self, X: object, name: str = "X") -> Array:
        if is_sparse(X):
            return check_sparse_inputs(X, self.n_inputs, self.dtype, name)
        return check_inputs(X, self.n_inputs, self.dtype, name)

    def check_targets(self, T: object, n_examples: int, name: str = "T") -> Array:
        try:
            return prepare_targets(self.loss_function, T, n_examples, self.n_outputs, self.dtype)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None

    # ---------------------------------------------------------------- dropout, penalties
    @property
    def has_dropout(self) -> bool:
        return any(self.dropout)

    @property
    def has_penalty(self) -> bool:
        return any(self.l1) or any(self.l2)

    def dropout_masks(self, m: int) -> list[Array | None] | None:
        """A training step's masks for a batch of ``m`` examples, drawn from the network's
        generator (see :func:`deltaprop.core.regularization.draw_masks`); None without
        dropout (nothing is drawn)."""
        if not self.has_dropout:
            return None
        widths = [layer.n_out for layer in self.layers[:-1]]
        return draw_masks(self.rng, self.dropout, m, widths, self.dtype)

    def penalty(self) -> float:
        """P(W) = Σ_l [l2_l / 2 · Σ w² + l1_l · Σ |w|] at the current weights (0 without)."""
        if not self.has_penalty:
            return 0.0
        return penalty_value([ly.W for ly in self.layers], self.l1, self.l2)

    def penalty_term(self, weights: Array | None, m: int) -> float:
        """The penalty's part of the loss of a batch of ``m`` examples with ``weights``:
        P, or P / Σ v under penalty_scale "sum"."""
        if not self.has_penalty:
            return 0.0
        total = float(m) if weights is None else float(weights.sum())
        return self.penalty() * penalty_factor(self.penalty_scale, total)

    # ---------------------------------------------------------------- forwarding
    def forward(self, X: Array, masks: list[Array | None] | None = None) -> ForwardPass:
        """Forward a batch (rows are examples), keeping every net input a and activation z;
        with ``masks`` (:meth:`dropout_masks`), a training step's forward pass under
        dropout."""
        a_list: list[Array] = []
        z_list: list[Array] = [X]
        undropped: list[Array] | None = None if masks is None else []
        with np.errstate(under="ignore"):
            for i, layer in enumerate(self.layers):
                # a_j = Σ_i w_ji z_i + b_j for every example: Z Wᵀ + b
                a = z_list[-1] @ layer.W.T
                a += layer.b
                a_list.append(a)
                z = layer.activation.forward(a)
                if undropped is not None and i < len(self.layers) - 1:
                    undropped.append(z)
                    mask = masks[i]  # type: ignore[index]
                    z = z if mask is None else z * mask  # z̃_j = m_j z_j / (1 − p)
                z_list.append(z)
        return ForwardPass(a_list, z_list, masks, undropped)

    def predict(self, X: object) -> Array:
        """The network's outputs o, shape (n_examples, n_outputs); never drops units."""
        return self.forward(self.check_inputs(X)).output

    # ---------------------------------------------------------------- backpropagation
    def backward(self, fp: ForwardPass, T: Array, weights: Array | None = None) -> list[Array]:
        """The deltas δ = -∂E/∂a of every layer, output layer last, by the delta rule.

        ``T`` must already be a checked (n, n_out) target array (see :meth:`check_targets`).
        With per-example ``weights`` v, each example's deltas are scaled by m v_i / Σ v, so
        that the batch mean :meth:`gradients_from` takes is the weighted mean. Under
        dropout (a forward pass with masks) δ_j = m_j h'(a_j) Σ_k δ_k w_kj / (1 − p).
        """
        deltas: list[Array] = [None] * len(self.layers)  # type: ignore[list-item]
        out = self.layers[-1]
        with np.errstate(under="ignore"):
            # Output units: δ_k = -∂E/∂o_k · h'(a_k), paired with the loss.
            top = self.loss_function.output_delta(fp.output, T, out.activation)
            if weights is not None:
                top = top * example_scale(weights, T.shape[0]).astype(self.dtype)[:, None]
            deltas[-1] = top
            for i in range(len(self.layers) - 2, -1, -1):
                after = self.layers[i + 1]
                # Hidden units: δ_j = h'(a_j) Σ_k δ_k w_kj, k over the next layer's units.
                backpropagated = deltas[i + 1] @ after.W
                z = fp.z[i + 1]
                if fp.masks is not None and fp.undropped is not None:
                    z = fp.undropped[i]
                    if fp.masks[i] is not None:
                        backpropagated *= fp.masks[i]  # only kept units pass δ back
                deltas[i] = self.layers[i].activation.derivative(z) * backpropagated
        return deltas

    def gradients_from(
        self, fp: ForwardPass, deltas: list[Array], weights: Array | None = None
    ) -> list[tuple[Array, Array]]:
        """[(∂E/∂W, ∂E/∂b) per layer] from a forward pass and its deltas (the batch mean,
        weighted when the deltas were, see :meth:`backward`), with the penalty's gradient on
        the weights."""
        n = fp.z[0].shape[0]
        factor = 0.0
        if self.has_penalty:
            total = float(n) if weights is None else float(weights.sum())
            factor = penalty_factor(self.penalty_scale, total)
        grads = []
        for i, delta in enumerate(deltas):
            # ∂E/∂w_ji = -δ_j z_i, averaged over the batch: -Δᵀ Z_prev / n; for sparse inputs
            # (Xᵀ Δ)ᵀ, a product SciPy takes on the sparse matrix.
            if i == 0 and is_sparse(fp.z[0]):
                dW = np.ascontiguousarray((fp.z[0].T @ delta).T)
            else:
                dW = delta.T @ fp.z[i]
            dW *= -1.0 / n
            db = delta.sum(axis=0)
            db *= -1.0 / n
            if factor:
                add_penalty_gradient(dW, self.layers[i].W, self.l1[i], self.l2[i], factor)
            grads.append((dW, db))
        return grads

    def gradients(
        self, X: object, T: object, sample_weight: object = None
    ) -> list[tuple[Array, Array]]:
        """[(∂E/∂W, ∂E/∂b) per layer], E = ``self.loss(X, T, sample_weight)``."""
        X = self.check_inputs(X)
        T = self.check_targets(T, X.shape[0])
        w = check_sample_weight(sample_weight, X.shape[0])
        fp = self.forward(X)
        return self.gradients_from(fp, self.backward(fp, T, w), w)

    # ---------------------------------------------------------------- error
    def data_loss_of(self, fp: ForwardPass, T: Array, weights: Array | None = None) -> float:
        """The examples' loss of a forward pass against checked targets: the batch mean, or
        the weighted mean Σ v_i E_i / Σ v_i; without the penalty."""
        with np.errstate(under="ignore"):
            if weights is None:
                return self.loss_function.value(fp.output, T, fp.a[-1])
            return weighted_mean(self.loss_function.per_example(fp.output, T, fp.a[-1]), weights)

    def loss_of(self, fp: ForwardPass, T: Array, weights: Array | None = None) -> float:
        """The loss E of a forward pass: :meth:`data_loss_of` plus the penalty's part."""
        value = self.data_loss_of(fp, T, weights)
        if self.has_penalty:
            value += self.penalty_term(weights, T.shape[0])
        return value

    def loss(self, X: object, T: object, sample_weight: object = None) -> float:
        """The loss E over the examples (weighted by ``sample_weight`` if given), with the
        penalty on the weights if the network has one."""
        X = self.check_inputs(X)
        T = self.check_targets(T, X.shape[0])
        w = check_sample_weight(sample_weight, X.shape[0])
        return self.loss_of(self.forward(X), T, w)

    def accuracy(self, X: object, T: object) -> float:
        """Fraction of examples classified right: argmax for several outputs, o > 0.5 for one.

        With binary cross-entropy over several outputs (multi-label), an example counts as
        right when every label is.
        """
        X = self.check_inputs(X)
        T = self.check_targets(T, X.shape[0])
        return accuracy_of(self.forward(X).output, T, self.loss_function.name)
