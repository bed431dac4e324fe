"""Gradient-descent optimizers with torch.optim's names, defaults and update rules.

Optimizers are built without parameters and update plain numpy arrays in place::

    opt = Adam(lr=1e-3)
    opt.step(params, grads)  # grads[i] = dLoss/dparams[i]

State (moment buffers, step count) is created at the first ``step`` from the parameters'
shapes and dtypes, and kept in those dtypes, so float32 networks stay float32. The
arithmetic follows torch's single-tensor (CPU) code path operation by operation, so
trajectories agree with torch's to rounding (tests/test_optimizers.py checks this).
"""

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from deltaprop.optim.base import Optimizer, lerp_

__all__ = ["Optimizer", "SGD", "RMSprop", "Adam", "AdamW", "Adagrad", "get_optimizer"]


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum (torch.optim.SGD).

    Algorithm (g_t = dLoss/dθ at θ_{t-1})::

        input: γ (lr), θ_0 (params), λ (weight_decay), μ (momentum), τ (dampening), nesterov
        for t = 1 to ... do
            if λ ≠ 0:  g_t ← g_t + λ θ_{t-1}
            if μ ≠ 0:
                if t > 1:  b_t ← μ b_{t-1} + (1 - τ) g_t
                else:      b_t ← g_t
                if nesterov:  g_t ← g_t + μ b_t
                else:         g_t ← b_t
            θ_t ← θ_{t-1} - γ g_t

    With the defaults this is the textbook delta rule w ← w - η ∂E/∂w, computed as
    exactly that: one multiply and one subtract, in the parameter's dtype.

    Args:
        lr: learning rate γ >= 0 (torch's default, 1e-3).
        momentum: momentum factor μ >= 0.
        dampening: dampening τ of the momentum (any finite number, as in torch).
        weight_decay: L2 penalty λ >= 0, added to the gradient.
        nesterov: Nesterov momentum; requires momentum > 0 and dampening == 0.
    """

    name = "SGD"
    _SCRATCH = ("_tmp",)

    def __init__(
        self,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
    ) -> None:
        self._configure(locals())
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError(
                "SGD: nesterov=True requires momentum > 0 and dampening == 0. "
                f"Received: momentum={momentum!r}, dampening={dampening!r}"
            )

    def buffer_names(self) -> tuple[str, ...]:
        return ("momentum_buffer",) if self.momentum != 0 else ()

    @property
    def variant(self) -> str:
        """Which update runs: "plain" (no momentum), "momentum" or "nesterov"."""
        if self.momentum == 0:
            return "plain"
        return "nesterov" if self.nesterov else "momentum"

    def step_constants(self) -> tuple[float, float, float, float]:
        """lr, weight_decay, momentum and 1 - dampening (see Optimizer.step_constants)."""
        return (self.lr, self.weight_decay, self.momentum, 1.0 - self.dampening)

    def _update(self, p: np.ndarray, g: np.ndarray, st: dict[str, np.ndarray]) -> None:
        lr, _, mu, undamped = self._constants
        tmp = st["_tmp"]
        d = self._grad(p, g, st)
        if mu != 0:
            buf = st["momentum_buffer"]
            if self.steps == 1:
                np.copyto(buf, d)
            else:
                buf *= mu
                buf += np.multiply(d, undamped, out=tmp)
            d = np.add(d, np.multiply(buf, mu, out=tmp), out=tmp) if self.nesterov else buf
        np.subtract(p, np.multiply(d, lr, out=tmp), out=p)


class RMSprop(Optimizer):
    """RMSprop (torch.optim.RMSprop): divide the gradient by a running RMS of its history.

    Algorithm::

        input: γ (lr), α (alpha), θ_0 (params), λ (weight_decay), μ (momentum), centered, ε (eps)
        initialize: v_0 ← 0 (square average), b_0 ← 0 (buffer), g^ave_0 ← 0
        for t = 1 to ... do
            if λ ≠ 0:  g_t ← g_t + λ θ_{t-1}
            v_t ← α v_{t-1} + (1 - α) g_t²
            ṽ_t ← v_t
            if centered:
                g^ave_t ← α g^ave_{t-1} + (1 - α) g_t
                ṽ_t ← ṽ_t - (g^ave_t)²
            if μ > 0:
                b_t ← μ b_{t-1} + g_t / (√ṽ_t + ε)
                θ_t ← θ_{t-1} - γ b_t
            else:
                θ_t ← θ_{t-1} - γ g_t / (√ṽ_t + ε)

    Args:
        lr: learning rate γ >= 0.
        alpha: smoothing constant α in [0, 1] (torch checks only >= 0; above 1 the
            square average can turn negative).
        eps: ε >= 0, added to the square root (not inside it, as in torch).
        weight_decay: L2 penalty λ >= 0, added to the gradient.
        momentum: momentum factor μ >= 0.
        centered: normalise by an estimate of the gradient's variance rather than its
            second moment.
    """

    name = "RMSprop"

    def __init__(
        self,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
    ) -> None:
        self._configure(locals())

    def buffer_names(self) -> tuple[str, ...]:
        extra = (("momentum_buffer",) if self.momentum > 0 else ()) + (
            ("grad_avg",) if self.centered else ()
        )
        return ("square_avg", *extra)

    def _update(self, p: np.ndarray, g: np.ndarray, st: dict[str, np.ndarray]) -> None:
        tmp, avg, sq = st["_tmp"], st["_aux"], st["square_avg"]
        d = self._grad(p, g, st)
        sq *= self.alpha
        np.multiply(d, 1.0 - self.alpha, out=tmp)  # addcmul's order: (value * g) * g
        tmp *= d
        sq += tmp
        if self.centered:
            lerp_(st["grad_avg"], d, 1.0 - self.alpha, tmp)
            np.subtract(sq, np.square(st["grad_avg"], out=avg), out=avg)
            np.sqrt(avg, out=avg)
        else:
            np.sqrt(sq, out=avg)
        avg += self.eps
        if self.momentum > 0:
            buf = st["momentum_buffer"]
            buf *= self.momentum
            buf += np.divide(d, avg, out=tmp)
            np.subtract(p, np.multiply(buf, self.lr, out=tmp), out=p)
        else:
            np.multiply(d, self.lr, out=tmp)
            tmp /= avg
            p -= tmp


class Adam(Optimizer):
    """Adam (torch.optim.Adam), with optional AMSGrad and L2 weight decay.

    Algorithm::

        input: γ (lr), β1, β2 (betas), θ_0 (params), λ (weight_decay), amsgrad, ε (eps)
        initialize: m_0 ← 0 (first moment), v_0 ← 0 (second moment), v^max_0 ← 0
        for t = 1 to ... do
            if λ ≠ 0:  g_t ← g_t + λ θ_{t-1}
            m_t ← β1 m_{t-1} + (1 - β1) g_t
            v_t ← β2 v_{t-1} + (1 - β2) g_t²
            m̂_t ← m_t / (1 - β1^t)
            if amsgrad:
                v^max_t ← max(v^max_{t-1}, v_t)
                v̂_t ← v^max_t / (1 - β2^t)
            else:
                v̂_t ← v_t / (1 - β2^t)
            θ_t ← θ_{t-1} - γ m̂_t / (√v̂_t + ε)

    Args:
        lr: learning rate γ >= 0.
        betas: (β1, β2), each in [0, 1): decay rates of the running averages of the
            gradient and of its square.
        eps: ε >= 0, added to the denominator for numerical stability.
        weight_decay: L2 penalty λ >= 0, added to the gradient (coupled; see AdamW).
        amsgrad: normalise by the running maximum of v_t (the AMSGrad variant).
    """

    name = "Adam"

    def __init__(
        self,
        lr: float = 1e-3,
        betas: Sequence[float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
    ) -> None:
        self._configure(locals())

    def buffer_names(self) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")[: 3 if self.amsgrad else 2]

    def step_constants(self) -> tuple[float, ...]:
        """lr, weight_decay, w = 1 - β1 (the first moment's lerp weight), 1 - w, β2, 1 - β2,
        √(1 - β2^t), eps, lr / (1 - β1^t) and 1 - lr·weight_decay (the decoupled decay), for
        step t = ``steps`` (see Optimizer.step_constants)."""
        (beta1, beta2), t, lr = self.betas, self.steps, self.lr
        w = 1.0 - beta1
        return (
            lr,
            self.weight_decay,
            w,
            1.0 - w,
            beta2,
            1.0 - beta2,
            (1.0 - beta2**t) ** 0.5,
            self.eps,
            lr / (1.0 - beta1**t),
            1.0 - lr * self.weight_decay,
        )

    def _update(self, p: np.ndarray, g: np.ndarray, st: dict[str, np.ndarray]) -> None:
        _, _, w, _, beta2, one_minus_beta2, bias2, eps, step_size, decay = self._constants
        tmp, den, m, v = st["_tmp"], st["_aux"], st["exp_avg"], st["exp_avg_sq"]
        if self.decoupled:
            if self.weight_decay != 0 and self._decaying:
                p *= decay
            d = g
        else:
            d = self._grad(p, g, st)
        lerp_(m, d, w, tmp)
        v *= beta2
        np.multiply(d, one_minus_beta2, out=tmp)
        tmp *= d
        v += tmp
        if self.amsgrad:
            v = np.maximum(st["max_exp_avg_sq"], v, out=st["max_exp_avg_sq"])
        np.sqrt(v, out=den)
        den /= bias2
        den += eps
        np.multiply(m, step_size, out=tmp)
        tmp /= den
        p -= tmp


class AdamW(Adam):
    """AdamW (torch.optim.AdamW): Adam with decoupled weight decay.

    Algorithm: as Adam, except that the decay bypasses the moments::

        for t = 1 to ... do
            θ_t ← θ_{t-1} - γ λ θ_{t-1}
            m_t, v_t, m̂_t, v̂_t as in Adam, from the raw gradient g_t
            θ_t ← θ_t - γ m̂_t / (√v̂_t + ε)

    Args: as Adam, but weight_decay λ (>= 0) defaults to 1e-2 and is scaled by lr;
        decay_biases: False decays the weight matrices only, not the biases (optax's masked
        weight decay; deltaprop's scikit-learn estimators use it for solver="adamw"). It
        reads ``params`` as ``Network.parameters()`` lays them out, [W_0, b_0, W_1, b_1, …]:
        the parameters at odd positions are the biases.
    """

    name = "AdamW"
    decoupled = True
    _DEFAULTED = {"decay_biases": True}

    def __init__(
        self,
        lr: float = 1e-3,
        betas: Sequence[float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        decay_biases: bool = True,
    ) -> None:
        self._configure(locals())

    def _decays(self, index: int) -> bool:
        return self.decay_biases or index % 2 == 0


class Adagrad(Optimizer):
    """Adagrad (torch.optim.Adagrad): per-coordinate steps that shrink with the summed g².

    Algorithm::

        input: γ (lr), θ_0 (params), λ (weight_decay), τ (initial_accumulator_value),
               η (lr_decay), ε (eps)
        initialize: sum_0 ← τ
        for t = 1 to ... do
            γ̃ ← γ / (1 + (t - 1) η)
            if λ ≠ 0:  g_t ← g_t + λ θ_{t-1}
            sum_t ← sum_{t-1} + g_t²
            θ_t ← θ_{t-1} - γ̃ g_t / (√sum_t + ε)

    Args:
        lr: learning rate γ >= 0.
        lr_decay: learning-rate decay η >= 0 per step.
        weight_decay: L2 penalty λ >= 0, added to the gradient.
        initial_accumulator_value: starting value τ >= 0 of the sum of squares.
        eps: ε >= 0, added to the denominator for numerical stability.
    """

    name = "Adagrad"

    def __init__(
        self,
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
    ) -> None:
        self._configure(locals())

    def buffer_names(self) -> tuple[str, ...]:
        return ("sum",)

    def _init_state(self, p: np.ndarray) -> dict[str, np.ndarray]:
        st = super()._init_state(p)
        st["sum"].fill(self.initial_accumulator_value)
        return st

    def _update(self, p: np.ndarray, g: np.ndarray, st: dict[str, np.ndarray]) -> None:
        tmp, std, acc = st["_tmp"], st["_aux"], st["sum"]
        d = self._grad(p, g, st)
        acc += np.multiply(d, d, out=tmp)
        np.sqrt(acc, out=std)
        std += self.eps
        np.multiply(d, self.lr / (1 + (self.steps - 1) * self.lr_decay), out=tmp)
        tmp /= std
        p -= tmp


_OPTIMIZERS: dict[str, type[Optimizer]] = {
    c.name.lower(): c for c in (SGD, RMSprop, Adam, AdamW, Adagrad)
}


def get_optimizer(spec: Optimizer | str | Mapping[str, Any]) -> Optimizer:
    """An optimizer from an instance (returned as is), a name (case-insensitive; default
    hyperparameters) or a ``config()`` dict ``{"name": ..., **hyperparameters}``."""
    if isinstance(spec, Optimizer):
        return spec
    if isinstance(spec, str):
        name, kwargs = spec, {}
    elif isinstance(spec, Mapping):
        kwargs = dict(spec)
        name = kwargs.pop("name", None)
    else:
        raise TypeError(f"get_optimizer: expected an Optimizer, name or dict. Received: {spec!r}")
    cls = _OPTIMIZERS.get(name.lower()) if isinstance(name, str) else None
    if cls is None:
        known = ", ".join(c.name for c in _OPTIMIZERS.values())
        raise ValueError(f"Unknown optimizer {name!r}. Known optimizers: {known}")
    allowed = list(inspect.signature(cls).parameters)
    unknown = [k for k in kwargs if k not in allowed]
    if unknown:
        raise ValueError(f"{cls.name}: unknown hyperparameters {unknown}. Known: {allowed}")
    return cls(**kwargs)
